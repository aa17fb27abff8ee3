"""Reading cycles and agreements back from the database into small records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from workflow.calendar import BusinessCalendar, business_calendar
from workflow.config.model import Cycle
from workflow.config.validate import cycle_settings
from workflow.errors import BadInput
from workflow.tables import AgreementRow, CycleRow, MilestoneStatusRow, OrganisationRow

CYCLES = CycleRow.__table__  # type: ignore[attr-defined]
AGREEMENTS = AgreementRow.__table__  # type: ignore[attr-defined]
ORGANISATIONS = OrganisationRow.__table__  # type: ignore[attr-defined]
STATUSES = MilestoneStatusRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StoredCycle:
    """A loaded cycle: its settings (no parties), version and the last processed tick."""

    settings: Cycle
    version: int
    last_tick: int | None

    @property
    def id(self) -> str:
        """The cycle id."""
        return self.settings.id

    @property
    def calendar(self) -> BusinessCalendar:
        """The cycle's business calendar."""
        return business_calendar(self.settings.calendar)


@dataclass(frozen=True)
class Agreement:
    """One agreement joined with its organisation."""

    pk: int
    cycle_id: str
    org_id: str
    kind: str
    group_id: str | None
    name_th: str
    name_en: str | None
    email: str
    supervisor_email: str
    state: str
    version: int
    published: bool
    kpis: list[dict[str, Any]] | None
    kpi_version: int
    change_request: dict[str, Any] | None
    results: dict[str, Any] | None
    tier: str | None
    last_event_at: int | None


def latest_cycle_id(conn: Connection) -> str | None:
    """The most recently loaded cycle's id, if any."""
    row = conn.execute(select(CYCLES.c.id).order_by(CYCLES.c.load_order.desc()).limit(1)).first()
    return None if row is None else str(row.id)


def get_cycle(conn: Connection, cycle_id: str | None = None) -> StoredCycle:
    """The cycle ``cycle_id`` or the latest loaded one; exit 2 when there is none."""
    ident = cycle_id or latest_cycle_id(conn)
    if ident is None:
        raise BadInput("no cycle is loaded: run `rubrong load CONFIG` first")
    row = conn.execute(
        select(CYCLES.c.version, CYCLES.c.content_hash, CYCLES.c.last_tick).where(
            CYCLES.c.id == ident
        )
    ).first()
    if row is None:
        raise BadInput(f"unknown cycle {ident!r}")
    settings = _SETTINGS.get(row.content_hash)
    if settings is None:
        document = conn.execute(select(CYCLES.c.document).where(CYCLES.c.id == ident)).scalar_one()
        settings = _SETTINGS[row.content_hash] = cycle_settings(json.loads(document))
    return StoredCycle(settings, int(row.version), row.last_tick)


# Parsed settings by content hash: a cycle's settings never change without a new hash.
_SETTINGS: dict[str, Cycle] = {}


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def agreement_query(cycle_id: str) -> Any:
    """SELECT of agreements joined with their organisations, for one cycle."""
    return (
        select(
            AGREEMENTS,
            ORGANISATIONS.c.kind,
            ORGANISATIONS.c.group_id,
            ORGANISATIONS.c.name_th,
            ORGANISATIONS.c.name_en,
            ORGANISATIONS.c.email,
            ORGANISATIONS.c.supervisor_email,
        )
        .join(
            ORGANISATIONS,
            (ORGANISATIONS.c.cycle_id == AGREEMENTS.c.cycle_id)
            & (ORGANISATIONS.c.id == AGREEMENTS.c.org_id),
        )
        .where(AGREEMENTS.c.cycle_id == cycle_id)
    )


def to_agreement(row: Any) -> Agreement:
    """A joined row as an ``Agreement``."""
    return Agreement(
        pk=row.pk,
        cycle_id=row.cycle_id,
        org_id=row.org_id,
        kind=row.kind,
        group_id=row.group_id,
        name_th=row.name_th,
        name_en=row.name_en,
        email=row.email,
        supervisor_email=row.supervisor_email,
        state=row.state,
        version=row.version,
        published=bool(row.published),
        kpis=_loads(row.kpis),
        kpi_version=row.kpi_version,
        change_request=_loads(row.change_request),
        results=_loads(row.results),
        tier=row.tier,
        last_event_at=row.last_event_at,
    )


def get_agreement(conn: Connection, cycle_id: str, org_id: str) -> Agreement:
    """One agreement by organisation id; exit 2 when unknown."""
    row = conn.execute(agreement_query(cycle_id).where(AGREEMENTS.c.org_id == org_id)).first()
    if row is None:
        raise BadInput(f"unknown agreement {org_id!r} in cycle {cycle_id}")
    return to_agreement(row)


def list_agreements(conn: Connection, cycle_id: str, org_ids: list[str] | None) -> list[Agreement]:
    """Agreements in id order (all, or the named ones; unknown names → exit 2)."""
    query = agreement_query(cycle_id).order_by(AGREEMENTS.c.org_id)
    if org_ids:
        query = query.where(AGREEMENTS.c.org_id.in_(org_ids))
    found = [to_agreement(row) for row in conn.execute(query)]
    if org_ids:
        known = {agreement.org_id for agreement in found}
        if missing := [ident for ident in org_ids if ident not in known]:
            raise BadInput(f"unknown agreement {missing[0]!r} in cycle {cycle_id}")
    return found


@dataclass(frozen=True)
class Status:
    """Where an agreement stands on one milestone."""

    status: str
    met_at: int | None
    late_business_days: int | None


def statuses(conn: Connection, agreement_pk: int) -> dict[str, Status]:
    """Milestone id → status for one agreement."""
    rows = conn.execute(select(STATUSES).where(STATUSES.c.agreement_pk == agreement_pk))
    return {
        row.milestone_id: Status(row.status, row.met_at, row.late_business_days) for row in rows
    }
