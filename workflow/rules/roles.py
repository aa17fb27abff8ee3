"""Roles (``admin``, ``province:TH-50``, …) and who may fire which event on which agreement."""

from __future__ import annotations

import re
from dataclasses import dataclass

from states.machine import EVENTS, OWN
from workflow.rules.errors import BadInput, NotAuthorised, quoted

PLAIN_ROLES = ("admin", "committee", "evaluator", "auditor")
PARTY_ROLES = ("province", "group", "agency")
_PARTY = re.compile(r"^(province|group|agency):([A-Za-z0-9][A-Za-z0-9_-]*)$")


@dataclass(frozen=True)
class Role:
    """A parsed role: ``kind`` and, for parties, the organisation it speaks for."""

    kind: str
    org: str | None = None

    def __str__(self) -> str:
        return self.kind if self.org is None else f"{self.kind}:{self.org}"

    def owns(self, org_id: str, org_kind: str) -> bool:
        """Whether this role is the agreement's own party."""
        return self.org == org_id and self.kind == org_kind


def parse_role(text: str) -> Role:
    """Parse a role string; exit 2 when it is not one of CONTRACT.md's roles."""
    if text in PLAIN_ROLES:
        return Role(text)
    match = _PARTY.match(text)
    if match is None:
        allowed = ", ".join((*PLAIN_ROLES, "province:CODE", "group:ID", "agency:ID"))
        raise BadInput(f"unknown role {quoted(text)} (roles: {allowed})")
    return Role(match.group(1), match.group(2))


def authorise(role: Role, event: str, org_id: str, org_kind: str) -> None:
    """Raise ``NotAuthorised`` (exit 4) unless ``role`` may fire ``event`` on this agreement."""
    allowed = EVENTS[event].roles
    if role.kind in allowed:
        return
    if OWN in allowed and role.owns(org_id, org_kind):
        return
    who = " or ".join(sorted(r if r != OWN else f"{org_kind}:{org_id}" for r in allowed))
    raise NotAuthorised(f"{role} may not fire {event} on {org_id}: only {who} may")
