"""What applying a changed cycle file would do: ``load --dry-run``'s effects.

The effects are never predicted by a second model of the rules. ``load --dry-run`` runs the
real ``--apply-changes`` (``workflow.usecases.load``) and then what the next ``tick`` does first —
every timer instant up to the latest one already processed (the cycle's ``last_tick``) that the
new dates make unprocessed, through the tick's own per-instant core — inside one transaction,
compares the cycle's milestone statuses and outbox with a copy taken at its start, and rolls it
all back. So the dry run reports exactly what ``--apply-changes`` followed by ``tick --now
LAST_TICK`` does (a later tick does that first, then what is simply due by then).

The copies are temporary tables and the comparison is one SQL statement per table, so a dry
run over a national-size cycle reads back only the rows that change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from workflow.rules.timeutil import format_instant
from workflow.store.database import Database
from workflow.store.repository import get_cycle
from workflow.usecases.tick import TickReport, claim_instant, done_keys, instants, process_instant

# Temporary tables: private to the connection, and gone with the rolled-back transaction.
_STATUS_COPY = "rubrong_effects_status"
_OUTBOX_COPY = "rubrong_effects_outbox"

_STATUS_ROWS = """
    SELECT s.agreement_pk, s.milestone_id, s.status, s.late_business_days, m.due, o.active
    FROM milestone_status s
    JOIN agreements a ON a.pk = s.agreement_pk
    JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id
    LEFT JOIN cycle_milestones m ON m.cycle_id = s.cycle_id AND m.id = s.milestone_id
    WHERE s.cycle_id = :cycle
"""

_CHANGED_STATUSES = f"""
    SELECT a.org_id, s.milestone_id, m.kind, b.pk IS NULL AS created,
           b.status AS old_status, s.status AS new_status,
           b.due AS old_due, m.due AS new_due,
           b.late_days AS old_late, s.late_business_days AS new_late,
           b.active AS old_active, o.active AS new_active
    FROM milestone_status s
    JOIN agreements a ON a.pk = s.agreement_pk
    JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id
    LEFT JOIN cycle_milestones m ON m.cycle_id = s.cycle_id AND m.id = s.milestone_id
    LEFT JOIN {_STATUS_COPY} b ON b.pk = s.agreement_pk AND b.milestone = s.milestone_id
    WHERE s.cycle_id = :cycle AND (b.pk IS NULL OR b.status <> s.status
        OR COALESCE(b.due, '') <> COALESCE(m.due, '')
        OR COALESCE(b.late_days, -1) <> COALESCE(s.late_business_days, -1)
        OR (b.active <> o.active AND s.status IN ('pending', 'missed', 'open')))
    ORDER BY a.org_id, COALESCE(m.position, -1), s.milestone_id
"""

_CHANGED_LETTERS = f"""
    SELECT x.key, x.agreement, x.milestone, x.kind, x.recipient, x.send_at,
           b.status AS old_status, x.status AS new_status
    FROM outbox x LEFT JOIN {_OUTBOX_COPY} b ON b.key = x.key
    WHERE x.cycle_id = :cycle AND (b.key IS NULL OR b.status <> x.status)
    ORDER BY x.send_at, x.key
"""

# Statuses that timers still act on (the others are final): as in _CHANGED_STATUSES.
_MOVING = ("pending", "missed", "open")


@dataclass
class Effects:
    """What a changed cycle file does to the cycle's agreements and letters.

    ``effects``: one object per agreement × milestone that changes (see ``effect``);
    ``withdrawn``: pending letters that become ``skipped``; ``added``: letters enqueued;
    ``until``: the latest processed instant, up to which the next tick re-judges (None
    before the first tick); ``scheduled``: the later timer instants of the moved milestones,
    at which ticks will enqueue their new letters (information, not effects).
    """

    until: int | None = None
    effects: list[dict[str, Any]] = field(default_factory=list)
    withdrawn: list[dict[str, Any]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    scheduled: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The ``effects`` and ``letters`` keys of ``load --dry-run --json``."""
        return {
            "effects": self.effects,
            "letters": {"withdrawn": self.withdrawn, "added": self.added},
            "rejudged_until": format_instant(self.until),
            "scheduled": self.scheduled,
        }

    def lines(self) -> list[str]:
        """The same as readable lines for the operator's console."""
        if not (self.effects or self.withdrawn or self.added):
            return ["effects: none"]
        until = format_instant(self.until)
        when = f"the next tick re-judges up to {until}" if until else "no tick has run yet"
        out = [f"effects ({len(self.effects)}; {when}):"]
        out += [f"  {effect_line(effect)}" for effect in self.effects]
        for title, letters in (("withdrawn", self.withdrawn), ("added", self.added)):
            out.append(f"letters {title} ({len(letters)}):")
            out += [f"  {letter_line(letter)}" for letter in letters]
        if self.scheduled:
            out.append(f"timers of the moved dates still ahead ({len(self.scheduled)}):")
            out += [
                f"  {item['milestone']} {item['due']} {item['what']} at {item['at']}"
                for item in self.scheduled
            ]
        return out


def snapshot(conn: Connection, cycle_id: str) -> None:
    """Copy the cycle's milestone statuses and outbox statuses into temporary tables."""
    conn.execute(
        text(
            f"CREATE TEMPORARY TABLE {_STATUS_COPY} (pk INTEGER, milestone TEXT, status TEXT, "
            "late_days INTEGER, due TEXT, active BOOLEAN)"
        )
    )
    conn.execute(text(f"INSERT INTO {_STATUS_COPY} {_STATUS_ROWS}"), {"cycle": cycle_id})
    conn.execute(text(f"CREATE TEMPORARY TABLE {_OUTBOX_COPY} (key TEXT, status TEXT)"))
    conn.execute(
        text(f"INSERT INTO {_OUTBOX_COPY} SELECT key, status FROM outbox WHERE cycle_id = :cycle"),
        {"cycle": cycle_id},
    )
    conn.execute(text(f"CREATE INDEX {_STATUS_COPY}_ix ON {_STATUS_COPY} (pk, milestone)"))
    conn.execute(text(f"CREATE INDEX {_OUTBOX_COPY}_ix ON {_OUTBOX_COPY} (key)"))
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ANALYZE {_STATUS_COPY}"))
        conn.execute(text(f"ANALYZE {_OUTBOX_COPY}"))


def rejudge_passed(conn: Connection, db: Database, cycle_id: str, wall: int) -> int | None:
    """What the next tick does first: the unprocessed instants ≤ the latest processed one.

    The tick's own per-instant core (claim, then process) on this connection, with ``now``
    = the cycle's ``last_tick``, as ``tick --now LAST_TICK`` runs it. Returns that instant.
    """
    stored = get_cycle(conn, cycle_id)
    if stored.last_tick is None:
        return None
    done = done_keys(conn, cycle_id)
    report = TickReport()
    for instant in instants(stored.settings):  # already in processing order
        due = instant.at <= stored.last_tick and instant.key not in done
        if due and claim_instant(conn, cycle_id, instant, wall):
            process_instant(conn, db, stored, instant, stored.last_tick, wall, report)
    return stored.last_tick


def collect(conn: Connection, cycle_id: str, until: int | None) -> Effects:
    """Compare the cycle with the copies ``snapshot`` took: the effects."""
    found = Effects(until)
    for row in conn.execute(text(_CHANGED_STATUSES), {"cycle": cycle_id}):
        found.effects.append(effect(row))
    for row in conn.execute(text(_CHANGED_LETTERS), {"cycle": cycle_id}):
        letter: dict[str, Any] = {
            "key": row.key,
            "agreement": row.agreement,
            "milestone": row.milestone,
            "kind": row.kind,
            "to": row.recipient,
            "send_at": format_instant(row.send_at),
            "status": row.new_status,
        }
        if row.old_status is None:
            found.added.append(letter)
        else:
            found.withdrawn.append({**letter, "from": row.old_status})
    moved = {item["milestone"] for item in found.effects if "due" in item}
    for instant in instants(get_cycle(conn, cycle_id).settings):
        if instant.milestone.id in moved and (until is None or instant.at > until):
            assert instant.milestone.due is not None
            found.scheduled.append(
                {
                    "milestone": instant.milestone.id,
                    "due": instant.milestone.due.isoformat(),
                    "what": instant.what,
                    "offset": instant.offset,
                    "at": format_instant(instant.at),
                }
            )
    return found


def effect(row: Any) -> dict[str, Any]:
    """One changed agreement × milestone row as an effect object.

    ``due``, ``status`` and ``late_business_days`` appear as ``{from, to}`` when they change;
    ``moving`` ``{from, to}`` when the organisation was removed from (or put back into) the
    cycle file and timers stop (or start again) acting on the milestone; ``created`` for a row
    that did not exist (an organisation or milestone added: ``status.from`` is null);
    ``note`` says why, in words.
    """
    out: dict[str, Any] = {"agreement": row.org_id, "milestone": row.milestone_id}
    out["kind"] = row.kind
    if row.created:
        out["created"] = True
        out["status"] = {"from": None, "to": row.new_status}
        out["note"] = _note(None, row.new_status)
        return out
    if (row.old_due or None) != (row.new_due or None):
        out["due"] = {"from": row.old_due, "to": row.new_due}
    if row.old_status != row.new_status:
        out["status"] = {"from": row.old_status, "to": row.new_status}
    if row.old_late != row.new_late:
        out["late_business_days"] = {"from": row.old_late, "to": row.new_late}
    if bool(row.old_active) != bool(row.new_active) and row.new_status in _MOVING:
        out["moving"] = {"from": bool(row.old_active), "to": bool(row.new_active)}
    note = _note(row.old_status, row.new_status) if "status" in out else None
    if note is None and "moving" in out:
        note = "removed from the cycle file" if row.old_active else "back in the cycle file"
    if note is None and "late_business_days" in out:
        note = "late business days recounted"
    if note is not None:
        out["note"] = note
    return out


_NOTES = {
    (None, "waived"): "joined after the deadline",
    (None, "closed"): "joined after it closed",
    (None, "pending"): "new",
    (None, "open"): "new",
    ("missed", "pending"): "the deadline moved after the latest processed instant",
    ("closed", "open"): "the deadline moved after the latest processed instant",
    ("pending", "missed"): "the new deadline has passed: missed at the next tick",
    ("open", "closed"): "the new deadline has passed: closed at the next tick",
    ("met", "late"): "arrived after the new deadline",
    ("late", "met"): "arrived before the new deadline",
}


def _note(old: str | None, new: str) -> str | None:
    return _NOTES.get((old, new))


def effect_line(item: dict[str, Any]) -> str:
    """``TH-50 sar6: due 2011-04-30 → 2011-05-07; status missed → pending (why)``."""
    parts = []
    for key in ("due", "status", "late_business_days", "moving"):
        if key in item:
            change = item[key]
            old = "—" if change["from"] is None else change["from"]
            parts.append(f"{key} {old} → {change['to']}")
    note = f" ({item['note']})" if "note" in item else ""
    return f"{item['agreement']} {item['milestone']}: {'; '.join(parts)}{note}"


def letter_line(letter: dict[str, Any]) -> str:
    """One letter: key, kind, recipient, send time and status."""
    was = f"{letter['from']} → " if "from" in letter else ""
    return (
        f"{letter['key']} {letter['kind']} → {letter['to']} at {letter['send_at']}: "
        f"{was}{letter['status']}"
    )
