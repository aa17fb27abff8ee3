"""Reading cycles and agreements back from the database into small records."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from workflow.config.model import Cycle
from workflow.config.validate import cycle_settings
from workflow.rules.calendar import BusinessCalendar, business_calendar
from workflow.rules.errors import BadInput, quoted
from workflow.rules.records import Agreement as Agreement  # re-exported: its home before records.py
from workflow.store import read_views
from workflow.store.database import ConnectionReader, hot
from workflow.store.read_views import NO_CYCLE as _NO_CYCLE
from workflow.store.tables import AgreementRow, CycleRow, MilestoneStatusRow, OrganisationRow

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


_LATEST_CYCLE = select(CYCLES.c.id).order_by(CYCLES.c.load_order.desc()).limit(1)
_CYCLE_ROW = select(CYCLES.c.version, CYCLES.c.content_hash, CYCLES.c.last_tick).where(
    CYCLES.c.id == bindparam("id")
)


def latest_cycle_id(conn: Connection) -> str | None:
    """The most recently loaded cycle's id, if any."""
    row = conn.execute(_LATEST_CYCLE).first()
    return None if row is None else str(row.id)


def get_cycle(conn: Connection, cycle_id: str | None = None) -> StoredCycle:
    """The cycle ``cycle_id`` or the latest loaded one; exit 2 when there is none."""
    ident = cycle_id or latest_cycle_id(conn)
    if ident is None:
        raise BadInput(_NO_CYCLE)
    row = conn.execute(_CYCLE_ROW, {"id": ident}).first()
    if row is None:
        raise BadInput(f"unknown cycle {quoted(ident)}")
    return _stored_cycle(conn, ident, row.version, row.content_hash, row.last_tick)


def _stored_cycle(
    conn: Connection, ident: str, version: int, content_hash: str, last_tick: int | None
) -> StoredCycle:
    settings = _SETTINGS.get(content_hash)
    if settings is None:
        (document,) = hot(conn, "SELECT document FROM cycles WHERE id = ?", (ident,)).fetchone()
        settings = _SETTINGS[content_hash] = cycle_settings(json.loads(document))
    return StoredCycle(settings, int(version), last_tick)


# Parsed settings by content hash: a cycle's settings never change without a new hash.
_SETTINGS: dict[str, Cycle] = {}


def get_agreement(conn: Connection, cycle_id: str, org_id: str) -> Agreement:
    """One agreement by organisation id; exit 2 when unknown."""
    (found,) = read_views.list_agreements(ConnectionReader(conn), cycle_id, [org_id])
    return found


def list_agreements(conn: Connection, cycle_id: str, org_ids: list[str] | None) -> list[Agreement]:
    """Agreements in id order (all, or the named ones; unknown names → exit 2)."""
    return read_views.list_agreements(ConnectionReader(conn), cycle_id, org_ids)


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


# Everything ``fire`` reads, in one statement: a head row (the cycle, and the agreement joined
# with its organisation: LEFT JOINs, so an unknown agreement still returns the cycle and the two
# "unknown" messages stay apart), then one row per milestone status the event looks at. UNION
# ALL rather than a join, which would repeat the agreement's columns (its KPI set…) on every
# status row.
_LATEST = "(SELECT id FROM cycles ORDER BY load_order DESC LIMIT 1)"
_FIRE_HEAD = (
    "SELECT c.id, c.version, c.content_hash, c.last_tick, a.pk, a.org_id, o.kind, o.group_id, "
    "o.name_th, o.name_en, o.email, o.supervisor_email, a.state, a.version, a.published, "
    "a.kpis, a.kpi_version, a.change_request, a.results, a.tier, a.last_event_at, "
    "NULL, NULL, NULL, NULL FROM cycles c "
    "LEFT JOIN agreements a ON a.cycle_id = c.id AND a.org_id = ? "
    "LEFT JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id "
    "WHERE c.id = {cycle}"
)
_FIRE_STATUSES = (
    " UNION ALL SELECT " + "NULL, " * 21 + "s.milestone_id, s.status, s.met_at, "
    "s.late_business_days FROM agreements a JOIN milestone_status s ON s.agreement_pk = a.pk "
    "WHERE a.cycle_id = {cycle} AND a.org_id = ?"
)
# (latest cycle?, how many statuses by id, or None for all of them) → the statement
_FIRE_SQL: dict[tuple[bool, int | None], str] = {}
# The cycle asked for (None: the latest) → the content hash of the settings it had last time.
_LAST_SEEN: dict[str | None, str] = {}


def _fire_sql(latest: bool, wanted: int | None) -> str:
    key = (latest, wanted)
    sql = _FIRE_SQL.get(key)
    if sql is None:
        cycle = _LATEST if latest else "?"
        sql = _FIRE_HEAD.format(cycle=cycle)
        if wanted is None or wanted:
            sql += _FIRE_STATUSES.format(cycle=cycle)
        if wanted:
            sql += f" AND s.milestone_id IN ({', '.join(['?'] * wanted)})"
        sql = _FIRE_SQL[key] = sql
    return sql


def read_for_fire(
    conn: Connection, cycle_id: str | None, org_id: str, needs: Callable[[Cycle], Sequence[str]]
) -> tuple[StoredCycle, Agreement, dict[str, Status]]:
    """The cycle (``cycle_id`` or the latest), one agreement and its statuses, in one query.

    ``needs(settings)`` names the milestones whose statuses the caller looks at; only those
    are read when the cycle's settings are already known (else all of them). Exit 2 as
    ``get_cycle`` and ``get_agreement`` would: no cycle, unknown cycle, unknown agreement.
    """
    cycle_id = cycle_id or None  # as in get_cycle: no id (or an empty one) means the latest
    assumed = _SETTINGS.get(_LAST_SEEN.get(cycle_id, ""))
    wanted = None if assumed is None else tuple(needs(assumed))
    head, current = _read_for_fire(conn, cycle_id, org_id, wanted)
    if assumed is not None and head[2] != _LAST_SEEN[cycle_id]:  # the cycle changed since
        head, current = _read_for_fire(conn, cycle_id, org_id, None)
    cycle = _stored_cycle(conn, head[0], head[1], head[2], head[3])
    _LAST_SEEN[cycle_id] = head[2]
    if head[4] is None or head[6] is None:
        raise BadInput(f"unknown agreement {quoted(org_id)} in cycle {cycle.id}")
    agreement = Agreement(
        pk=head[4],
        cycle_id=head[0],
        org_id=head[5],
        kind=head[6],
        group_id=head[7],
        name_th=head[8],
        name_en=head[9],
        email=head[10],
        supervisor_email=head[11],
        state=head[12],
        version=head[13],
        published=bool(head[14]),
        kpis_json=head[15],
        kpi_version=head[16],
        change_request_json=head[17],
        results_json=head[18],
        tier=head[19],
        last_event_at=head[20],
    )
    return cycle, agreement, current


def _read_for_fire(
    conn: Connection, cycle_id: str | None, org_id: str, wanted: tuple[str, ...] | None
) -> tuple[Any, dict[str, Status]]:
    head_params: tuple[str, ...] = (org_id,) if cycle_id is None else (org_id, cycle_id)
    params = head_params
    if wanted is None or wanted:
        params += head_params[::-1] + (wanted or ())
    head: Any = None
    current: dict[str, Status] = {}
    sql = _fire_sql(cycle_id is None, None if wanted is None else len(wanted))
    for row in hot(conn, sql, params).fetchall():
        if row[0] is not None:
            head = row
        else:
            current[row[21]] = Status(row[22], row[23], row[24])
    if head is None:
        raise BadInput(_NO_CYCLE if cycle_id is None else f"unknown cycle {quoted(cycle_id)}")
    return head, current
