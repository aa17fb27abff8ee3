"""Who may read what: the one table every read path consults (CONTRACT.md "REST API").

| resource | admin | auditor | committee, evaluator | province, group, agency |
|---|---|---|---|---|
| agreements, milestones, KPI versions, scores, history (public documents) | all | all | all | all |
| the declared machine (diagram) | all | all | all | all |
| outbox rows (letters and the addresses they went to) | all | all | none | own |
| users, the security log | all | none | none | none |
| e-SAR Card drafts, documents before submission | all | all | evaluator all, committee none | own |

"own" means the rows whose ``agreement`` is the role's own organisation. A group therefore sees
the letters addressed about its group agreement and **not** its provinces' letters ("its own
organisation only"). Digests and alerts (``agreement`` null) are OPDC's own mail: only the roles
that read everything see them.

A list is filtered (rows a role may not read are simply absent; a role with no reach gets an
empty list), a single row it may not read is 404 like an unknown one, and a resource it may not
read at all (users, the security log) is 403. Refused single rows and resources are written to
the security log by the web layer (:mod:`workflow.web.auth`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from workflow.rules.roles import PARTY_ROLES, PLAIN_ROLES, Role


class Resource(StrEnum):
    """Something a role may read."""

    AGREEMENTS = "agreements"
    MILESTONES = "milestones"
    KPI_VERSIONS = "kpi_versions"
    SCORES = "scores"
    HISTORY = "history"
    MACHINE = "machine"
    OUTBOX = "outbox"
    USERS = "users"
    SECURITY_LOG = "security_log"
    ESAR_DRAFTS = "esar_drafts"  # drafts and their documents before submission: not public


class Reach(StrEnum):
    """How much of a resource a role reads."""

    ALL = "all"
    OWN = "own"  # its own organisation's rows only
    NONE = "none"


ROLE_KINDS = (*PLAIN_ROLES, *PARTY_ROLES)
_EVERYONE = dict.fromkeys(ROLE_KINDS, Reach.ALL)
_ADMIN_ONLY = {kind: Reach.ALL if kind == "admin" else Reach.NONE for kind in ROLE_KINDS}

READS: dict[Resource, dict[str, Reach]] = {
    Resource.AGREEMENTS: _EVERYONE,
    Resource.MILESTONES: _EVERYONE,
    Resource.KPI_VERSIONS: _EVERYONE,
    Resource.SCORES: _EVERYONE,
    Resource.HISTORY: _EVERYONE,
    Resource.MACHINE: _EVERYONE,
    Resource.OUTBOX: {
        "admin": Reach.ALL,
        "auditor": Reach.ALL,
        "committee": Reach.NONE,
        "evaluator": Reach.NONE,
        "province": Reach.OWN,
        "group": Reach.OWN,
        "agency": Reach.OWN,
    },
    Resource.ESAR_DRAFTS: {
        "admin": Reach.ALL,
        "auditor": Reach.ALL,
        "committee": Reach.NONE,
        "evaluator": Reach.ALL,
        "province": Reach.OWN,
        "group": Reach.OWN,
        "agency": Reach.OWN,
    },
    Resource.USERS: _ADMIN_ONLY,
    Resource.SECURITY_LOG: _ADMIN_ONLY,
}


def reach(role: Role, resource: Resource) -> Reach:
    """How much of ``resource`` ``role`` may read (an unknown role kind reads nothing)."""
    return READS[resource].get(role.kind, Reach.NONE)


def may_read(role: Role, resource: Resource) -> bool:
    """Whether ``role`` may read any of ``resource`` at all."""
    return reach(role, resource) is not Reach.NONE


def readers(resource: Resource) -> list[str]:
    """The role kinds that may read some of ``resource`` (for messages)."""
    return [kind for kind, found in READS[resource].items() if found is not Reach.NONE]


@dataclass(frozen=True)
class RowScope:
    """The rows of a per-organisation resource a role may read.

    ``everything`` — every row (digests and alerts included); otherwise only rows whose
    ``agreement`` is ``organisation`` (none at all when that is None).
    """

    everything: bool
    organisation: str | None = None

    def allows(self, agreement: str | None) -> bool:
        """Whether a row about ``agreement`` (None: OPDC's own mail) is readable."""
        if self.everything:
            return True
        return agreement is not None and agreement == self.organisation


EVERYTHING = RowScope(everything=True)
NOTHING = RowScope(everything=False)


def row_scope(role: Role, resource: Resource) -> RowScope:
    """The rows of ``resource`` that ``role`` may read."""
    found = reach(role, resource)
    if found is Reach.ALL:
        return EVERYTHING
    if found is Reach.OWN and role.org is not None:
        return RowScope(everything=False, organisation=role.org)
    return NOTHING


def outbox_scope(role: Role) -> RowScope:
    """The outbox rows (letters and addresses) that ``role`` may read."""
    return row_scope(role, Resource.OUTBOX)
