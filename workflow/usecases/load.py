"""``load``: store a cycle file, create its agreements, or apply a changed file's differences.

The same parsed content again changes nothing. Changed content is refused unless the
administrator passes ``--apply-changes``; then the differences are applied in one transaction
and recorded as a ``config`` history entry. Nothing is ever deleted: a removed organisation
keeps its agreement and history. Bulk work is INSERT … SELECT, so 100,000 organisations load
without building an object per row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, text, update

from workflow.config.diff import Change, diff_documents
from workflow.config.model import Cycle, Milestone
from workflow.config.validate import canonical_json
from workflow.rules.clock import Clock
from workflow.rules.timeutil import deadline_instant
from workflow.store.database import Database
from workflow.store.history import NewEntry, append
from workflow.store.outbox import NOTICE_KINDS, skip_pending
from workflow.store.repository import CYCLES, ORGANISATIONS
from workflow.store.tables import CycleVersionRow, MilestoneRow
from workflow.usecases import load_effects
from workflow.usecases.load_changes import (
    enqueue_corrections,
    moved_milestones,
    rejudge,
    reopen_timers,
    waive_passed,
    withdraw_removed,
)
from workflow.usecases.load_effects import Effects

VERSIONS = CycleVersionRow.__table__  # type: ignore[attr-defined]
MILESTONES = MilestoneRow.__table__  # type: ignore[attr-defined]
BATCH = 5000


@dataclass
class LoadOutcome:
    """What ``load`` did or would do."""

    action: str  # created | unchanged | refused | would_change | would_create | applied
    cycle: str
    agreements: int = 0
    changes: list[Change] = field(default_factory=list)
    effects: Effects | None = None  # a dry run of a change: what applying it would do


def load_cycle(
    db: Database,
    clock: Clock,
    cycle: Cycle,
    source: str,
    *,
    dry_run: bool = False,
    apply_changes: bool = False,
) -> LoadOutcome:
    """Store ``cycle`` (first load), do nothing (same content), or diff / apply a change.

    A dry run of a change applies it and re-judges the time already processed in a
    transaction that is rolled back, and reports what that did (``LoadOutcome.effects``).
    """
    document = canonical_json(cycle.document)
    content_hash = hashlib.sha256(document.encode()).hexdigest()
    try:
        with db.write() as conn:
            row = conn.execute(select(CYCLES).where(CYCLES.c.id == cycle.id)).first()
            if row is None:
                if dry_run:
                    return LoadOutcome("would_create", cycle.id, len(cycle.parties()))
                count = _create(conn, clock.now(), cycle, document, content_hash, source)
                return LoadOutcome("created", cycle.id, count)
            if row.content_hash == content_hash:
                return LoadOutcome("unchanged", cycle.id)
            changes = diff_documents(json.loads(row.document), json.loads(document))
            if not changes:
                # Only the order of groups or organisations differs: the same content.
                return LoadOutcome("unchanged", cycle.id)
            if not (dry_run or apply_changes):
                return LoadOutcome("refused", cycle.id, changes=changes)
            now = clock.now()
            if dry_run:
                db.lock_chain(conn)  # before the copy: what it compares with stays still
                load_effects.snapshot(conn, cycle.id)
            _apply(conn, db, now, cycle, row, document, content_hash, source, changes)
            if not dry_run:
                return LoadOutcome("applied", cycle.id, changes=changes)
            until = load_effects.rejudge_passed(conn, db, cycle.id, now)
            effects = load_effects.collect(conn, cycle.id, until)
            raise _Discard(LoadOutcome("would_change", cycle.id, changes=changes, effects=effects))
    except _Discard as discard:  # raised inside the transaction: all of it rolled back
        return discard.outcome


class _Discard(Exception):
    """Leaves a dry run's transaction, which rolls it back, carrying what it found."""

    def __init__(self, outcome: LoadOutcome) -> None:
        super().__init__(outcome.action)
        self.outcome = outcome


def _create(
    conn: Connection, now: int, cycle: Cycle, document: str, content_hash: str, source: str
) -> int:
    order = conn.execute(select(func.coalesce(func.max(CYCLES.c.load_order), 0))).scalar_one()
    conn.execute(
        insert(CYCLES).values(
            id=cycle.id,
            name_th=cycle.name_th,
            version=1,
            content_hash=content_hash,
            document=document,
            source=source,
            load_order=order + 1,
            loaded_at=now,
        )
    )
    _record_version(conn, cycle.id, 1, content_hash, document, source, now)
    conn.execute(insert(MILESTONES), cycle_milestone_rows(cycle))
    parties = cycle_party_rows(cycle)
    for start in range(0, len(parties), BATCH):
        conn.execute(insert(ORGANISATIONS), parties[start : start + BATCH])
    return _create_agreements(conn, cycle.id)


def _record_version(
    conn: Connection,
    cycle_id: str,
    version: int,
    content_hash: str,
    document: str,
    source: str,
    now: int,
) -> None:
    conn.execute(
        insert(VERSIONS).values(
            cycle_id=cycle_id,
            version=version,
            content_hash=content_hash,
            document=document,
            source=source,
            applied_at=now,
        )
    )


def cycle_milestone_rows(cycle: Cycle) -> list[dict[str, Any]]:
    """The ``cycle_milestones`` rows of a cycle, in file order."""
    return [_milestone_row(cycle.id, position, m) for position, m in enumerate(cycle.milestones)]


def _milestone_row(cycle_id: str, position: int, m: Milestone) -> dict[str, Any]:
    return {
        "cycle_id": cycle_id,
        "id": m.id,
        "position": position,
        "kind": m.kind,
        "actor": m.actor,
        "title_th": m.title_th,
        "title_en": m.title_en,
        "due": m.due.isoformat() if m.due else None,
        "published_due": m.published_due.isoformat() if m.published_due else None,
        "start": m.start.isoformat() if m.start else None,
        "deadline": deadline_instant(m.due) if m.due else None,
        "event": m.event,
        "reminders": json.dumps(list(m.reminders)),
        "penalty": str(m.penalty_per_business_day)
        if m.penalty_per_business_day is not None
        else None,
        "for_province": m.applies("province"),
        "for_group": m.applies("group"),
        "for_agency": m.applies("agency"),
    }


def cycle_party_rows(cycle: Cycle) -> list[dict[str, Any]]:
    """The ``organisations`` rows of a cycle: its groups and organisations."""
    return [
        {
            "cycle_id": cycle.id,
            "id": party.id,
            "kind": party.kind,
            "group_id": party.group,
            "name_th": party.name_th,
            "name_en": party.name_en,
            "email": party.email,
            "supervisor_email": party.supervisor_email,
            "active": True,
        }
        for party in cycle.parties()
    ]


_NEW_AGREEMENTS = text(
    """
    INSERT INTO agreements (cycle_id, org_id, state, version, published, kpi_version, negotiated)
    SELECT o.cycle_id, o.id, 'drafted', 0, :false, 0, :false
    FROM organisations o
    WHERE o.cycle_id = :cycle AND NOT EXISTS (
        SELECT 1 FROM agreements a WHERE a.cycle_id = o.cycle_id AND a.org_id = o.id)
    """
)

_NEW_STATUSES = text(
    """
    INSERT INTO milestone_status (agreement_pk, milestone_id, cycle_id, status)
    SELECT a.pk, m.id, a.cycle_id,
           CASE WHEN m.kind = 'deliverable' THEN 'pending' ELSE 'open' END
    FROM agreements a
    JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id
    JOIN cycle_milestones m ON m.cycle_id = a.cycle_id
    WHERE a.cycle_id = :cycle
      AND ((o.kind = 'province' AND m.for_province = :true)
        OR (o.kind = 'group' AND m.for_group = :true)
        OR (o.kind = 'agency' AND m.for_agency = :true))
      AND NOT EXISTS (SELECT 1 FROM milestone_status s
                      WHERE s.agreement_pk = a.pk AND s.milestone_id = m.id)
    """
)


def _analyze(conn: Connection, table: str) -> None:
    """Fresh statistics on PostgreSQL: freshly bulk-inserted tables otherwise get bad plans."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ANALYZE {table}"))


def _create_agreements(conn: Connection, cycle_id: str) -> int:
    """Agreements for organisations that have none, and their milestone rows."""
    flags = {"cycle": cycle_id, "true": True, "false": False}
    _analyze(conn, "organisations")
    created = conn.execute(_NEW_AGREEMENTS, flags).rowcount
    _analyze(conn, "agreements")
    conn.execute(_NEW_STATUSES, flags)
    return int(created)


def _apply(
    conn: Connection,
    db: Database,
    now: int,
    cycle: Cycle,
    row: Any,
    document: str,
    content_hash: str,
    source: str,
    changes: list[Change],
) -> None:
    db.lock_chain(conn)  # first, before any row: the lock order of every history writer
    version = int(row.version) + 1
    conn.execute(
        update(CYCLES)
        .where(CYCLES.c.id == cycle.id)
        .values(
            name_th=cycle.name_th,
            version=version,
            content_hash=content_hash,
            document=document,
            source=source,
        )
    )
    _record_version(conn, cycle.id, version, content_hash, document, source, now)
    old_dues = {
        r.id: r.due
        for r in conn.execute(
            select(MILESTONES.c.id, MILESTONES.c.due).where(MILESTONES.c.cycle_id == cycle.id)
        )
    }
    conn.execute(delete(MILESTONES).where(MILESTONES.c.cycle_id == cycle.id))
    conn.execute(insert(MILESTONES), cycle_milestone_rows(cycle))
    removed = _sync_parties(conn, cycle)
    withdraw_removed(conn, cycle.id, removed)
    first_new = conn.execute(text("SELECT COALESCE(MAX(pk), 0) FROM agreements")).scalar_one()
    _create_agreements(conn, cycle.id)
    if row.last_tick is not None:
        waive_passed(conn, cycle.id, int(first_new), int(row.last_tick))
    moved = moved_milestones(cycle, old_dues)
    # Another calendar changes the late business days of every arrival, moved or not.
    calendar_changed = any(change.path.startswith("calendar") for change in changes)
    recount = {m.id for m in cycle.milestones} if calendar_changed else moved
    rejudge(conn, cycle, row.last_tick, moved, recount)
    for milestone_id in sorted(moved):
        # Notices about the old date would be wrong (sent ones stay as they are); the next
        # tick enqueues the new date's, under new keys (the key holds the due date).
        skip_pending(conn, cycle.id, milestone_id, NOTICE_KINDS, None)
    reopen_timers(conn, cycle, moved)
    enqueue_corrections(conn, cycle, old_dues, moved, version, row.last_tick, now)
    append(
        conn,
        [
            NewEntry(
                cycle=cycle.id,
                agreement=None,
                kind="config",
                event="apply_changes",
                from_state=None,
                to_state=None,
                actor="admin",
                at=now,
                recorded_at=now,
                data={"version": version, "changes": [change.as_json() for change in changes]},
            )
        ],
    )


def _sync_parties(conn: Connection, cycle: Cycle) -> list[str]:
    """Insert new organisations, update changed ones, deactivate removed ones (returned)."""
    wanted = {party["id"]: party for party in cycle_party_rows(cycle)}
    existing = {
        r.id: r._mapping
        for r in conn.execute(select(ORGANISATIONS).where(ORGANISATIONS.c.cycle_id == cycle.id))
    }
    added = [party for ident, party in wanted.items() if ident not in existing]
    if added:
        conn.execute(insert(ORGANISATIONS), added)
    for ident, party in wanted.items():
        if ident in existing and any(existing[ident][key] != value for key, value in party.items()):
            conn.execute(
                update(ORGANISATIONS)
                .where(ORGANISATIONS.c.cycle_id == cycle.id, ORGANISATIONS.c.id == ident)
                .values(**party)
            )
    removed = [ident for ident in existing if ident not in wanted]
    if removed:
        conn.execute(
            update(ORGANISATIONS)
            .where(ORGANISATIONS.c.cycle_id == cycle.id, ORGANISATIONS.c.id.in_(removed))
            .values(active=False)
        )
    return removed


def load_document(outcome: LoadOutcome) -> dict[str, Any]:
    """``load --json``: ``{action, cycle, agreements, changes, effects, letters, …}``.

    ``changes`` are the differences as recorded in the ``config`` entry; ``effects`` and
    ``letters`` come from a dry run of a change (``Effects.as_json``) and are empty otherwise:
    a first load's dry run creates ``agreements`` agreements, which are not listed as effects.
    """
    document: dict[str, Any] = {
        "action": outcome.action,
        "cycle": outcome.cycle,
        "agreements": outcome.agreements,
        "changes": [change.as_json() for change in outcome.changes],
    }
    effects = outcome.effects or load_effects.Effects()
    document.update(effects.as_json())
    return document
