"""``tick(now)``: what happens when a deadline passes. The single, idempotent timer core.

Timer instants are derived from the cycle's milestones (a few dozen per cycle, whatever the
number of agreements): reminders at ``send_time`` on due − N days, the deadline at the end of
the due day (deliverables turn ``missed``, cutoffs and windows ``closed``), the overdue notice
and the escalation after it. Each instant ≤ now that is not yet in ``timers_done`` is processed
in time order, in its own transaction, with set-based SQL over every agreement at once; the
``timers_done`` row is written first in that transaction, so an instant is processed exactly
once even when several processes tick together or one dies half-way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, TextClause, bindparam, select, text, update

from notifications.keys import outbox_key
from notifications.render import TEMPLATE_VERSION
from notifications.subjects import subject_for
from workflow.config.model import Cycle, Milestone
from workflow.rules.calendar import business_calendar
from workflow.rules.clock import Clock
from workflow.rules.notice_days import notice_days, others, receiver_scopes
from workflow.rules.timeutil import DAY_SECONDS, at_time_of_day, bangkok_date, deadline_instant
from workflow.store.database import Database
from workflow.store.history import NewEntry, append_alike
from workflow.store.outbox import (
    KEY_SQL,
    MESSAGE_ID_SQL,
    Notification,
    enqueue,
    per_org_key,
    skip_pending,
)
from workflow.store.repository import CYCLES, StoredCycle, get_cycle
from workflow.store.tables import TimerRow

TIMERS = TimerRow.__table__  # type: ignore[attr-defined]
# At equal instants the deadline is judged before the notices that follow from it.
PRIORITY = {"deadline": 0, "close": 0, "overdue": 1, "escalation": 2, "reminder": 3}


@dataclass(frozen=True)
class Instant:
    """One timer instant of one milestone.

    A notice whose day is a weekend or holiday for some receivers only is split: the instant
    most receivers share (``only`` None, ``besides`` the others) and one instant per other day
    (``only`` those receivers). Only the split-off instants' keys carry their day.
    """

    at: int
    what: str  # reminder | deadline | overdue | escalation | close
    milestone: Milestone
    offset: int = 0
    only: tuple[str, ...] | None = None
    besides: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Unique per cycle; includes the due date, so a moved date makes new instants."""
        assert self.milestone.due is not None
        key = f"{self.milestone.id}/{self.milestone.due.isoformat()}/{self.what}/{self.offset}"
        if self.only is not None:
            key += "/" + bangkok_date(self.at).isoformat()
        return key


def instants(cycle: Cycle) -> list[Instant]:
    """Every timer instant of a cycle, in processing order."""
    rules = cycle.notifications
    calendar = business_calendar(cycle.calendar)
    found: list[Instant] = []
    for milestone in cycle.milestones:
        due = milestone.due
        if due is None:
            continue
        if milestone.kind != "deliverable":
            found.append(Instant(deadline_instant(due), "close", milestone))
            continue
        found.append(Instant(deadline_instant(due), "deadline", milestone))
        scopes = receiver_scopes(cycle, milestone)
        notices = [("reminder", -days, days) for days in milestone.reminders]
        notices += [("overdue", rules.overdue_after, rules.overdue_after)]
        notices += [("escalation", rules.escalate_after, rules.escalate_after)]
        for what, shift, offset in notices:
            days = notice_days(
                calendar,
                due + dt.timedelta(days=shift),
                scopes,
                notice=what,
                due=due,
                policy=rules.non_business_days,
            )
            besides = others(days)
            for day in days:
                when = at_time_of_day(day.day, rules.send_time)
                exclude = besides if day.only is None else ()
                found.append(Instant(when, what, milestone, offset, day.only, exclude))
    return sorted(
        found, key=lambda i: (i.at, PRIORITY[i.what], i.milestone.id, -i.offset, i.only or ())
    )


@dataclass
class TickReport:
    """What one tick did."""

    instants: int = 0
    enqueued: int = 0
    missed: int = 0
    closed: int = 0
    processed: list[str] = field(default_factory=list)


def next_instant(db: Database, after: int) -> int | None:
    """The earliest unprocessed timer instant after ``after`` of any cycle, if any."""
    with db.read() as conn:
        cycle_ids = [row.id for row in conn.execute(select(CYCLES.c.id))]
        best: int | None = None
        for cycle_id in cycle_ids:
            cycle = get_cycle(conn, cycle_id)
            done = done_keys(conn, cycle_id)
            pending = [i.at for i in instants(cycle.settings) if i.key not in done and i.at > after]
            if pending and (best is None or min(pending) < best):
                best = min(pending)
        return best


def done_keys(conn: Connection, cycle_id: str) -> set[str]:
    """The keys of the cycle's timer instants already processed (``timers_done``)."""
    return {
        row.key for row in conn.execute(select(TIMERS.c.key).where(TIMERS.c.cycle_id == cycle_id))
    }


def tick(db: Database, clock: Clock, now: int) -> TickReport:
    """Process every timer instant ≤ ``now`` of every loaded cycle, in time order, once."""
    report = TickReport()
    with db.read() as conn:
        cycles = [get_cycle(conn, row.id) for row in conn.execute(select(CYCLES.c.id))]
        done = {cycle.id: done_keys(conn, cycle.id) for cycle in cycles}
    due = sorted(
        (
            (instant, cycle)
            for cycle in cycles
            for instant in instants(cycle.settings)
            if instant.at <= now and instant.key not in done[cycle.id]
        ),
        key=lambda pair: (pair[0].at, PRIORITY[pair[0].what], pair[1].id),
    )
    for instant, cycle in due:
        with db.write() as conn:
            if claim_instant(conn, cycle.id, instant, clock.now()):
                process_instant(conn, db, cycle, instant, now, clock.now(), report)
                report.instants += 1
                report.processed.append(f"{cycle.id}/{instant.key}")
    with db.write() as conn:
        for cycle in cycles:
            conn.execute(
                update(CYCLES)
                .where(CYCLES.c.id == cycle.id)
                .where((CYCLES.c.last_tick.is_(None)) | (CYCLES.c.last_tick < now))
                .values(last_tick=now)
            )
    return report


def claim_instant(conn: Connection, cycle_id: str, instant: Instant, wall: int) -> bool:
    """Record ``instant`` as processed; False when another writer has (it runs once)."""
    result = conn.execute(
        text(
            "INSERT INTO timers_done (cycle_id, key, at, processed_at) "
            "VALUES (:cycle, :key, :at, :wall) ON CONFLICT DO NOTHING"
        ),
        {"cycle": cycle_id, "key": instant.key, "at": instant.at, "wall": wall},
    )
    return bool(result.rowcount)


def process_instant(
    conn: Connection,
    db: Database,
    cycle: StoredCycle,
    instant: Instant,
    now: int,
    recorded: int,
    report: TickReport,
) -> None:
    """What one claimed instant does: close windows, mark deadlines missed, or enqueue its
    notices (skipped when first processed more than ``catch_up_days`` late)."""
    milestone = instant.milestone
    if instant.what == "close":
        result = conn.execute(
            text(
                "UPDATE milestone_status SET status = 'closed' "
                "WHERE cycle_id = :cycle AND milestone_id = :milestone AND status = 'open'"
            ),
            {"cycle": cycle.id, "milestone": milestone.id},
        )
        report.closed += result.rowcount
    elif instant.what == "deadline":
        report.missed += _mark_missed(conn, db, cycle, instant, recorded)
    else:
        stale = now - instant.at > cycle.settings.notifications.catch_up_days * DAY_SECONDS
        if milestone.actor == "organisation":
            report.enqueued += _enqueue_notices(conn, cycle, instant, stale, recorded)
        else:
            report.enqueued += _enqueue_digest(conn, cycle, instant, stale, recorded)


# Agreements of organisations removed from the cycle file keep their history but stop moving.
_REMOVED = (
    "SELECT r.pk FROM agreements r JOIN organisations ro "
    "ON ro.cycle_id = r.cycle_id AND ro.id = r.org_id "
    "WHERE r.cycle_id = :cycle AND ro.active = :inactive"
)


def _mark_missed(
    conn: Connection, db: Database, cycle: StoredCycle, instant: Instant, recorded: int
) -> int:
    milestone = instant.milestone
    params = {"cycle": cycle.id, "milestone": milestone.id, "inactive": False}
    # The chain lock before reading: a fire in flight (it holds the lock from its start) has
    # then either committed, and is seen, or not begun; never a stale "missed" entry.
    db.lock_chain(conn)
    rows = conn.execute(
        text(
            "SELECT a.org_id, a.state FROM milestone_status s "
            "JOIN agreements a ON a.pk = s.agreement_pk "
            "WHERE s.cycle_id = :cycle AND s.milestone_id = :milestone AND s.status = 'pending' "
            f"AND s.agreement_pk NOT IN ({_REMOVED}) ORDER BY a.org_id"
        ),
        params,
    ).all()
    conn.execute(
        text(
            "UPDATE milestone_status SET status = 'missed' "
            "WHERE cycle_id = :cycle AND milestone_id = :milestone AND status = 'pending' "
            f"AND agreement_pk NOT IN ({_REMOVED})"
        ),
        params,
    )
    skip_pending(conn, cycle.id, milestone.id, ("reminder",), None)
    assert milestone.due is not None
    due = milestone.due.isoformat()
    model = NewEntry(
        cycle=cycle.id,
        agreement=None,  # each row's
        kind="timer",
        event="missed",
        from_state=None,  # from = to = each row's state
        to_state=None,
        actor="system",
        at=instant.at,
        recorded_at=recorded,
        data={"milestone": milestone.id, "due": due},
    )
    append_alike(conn, model, ((str(org), str(state)) for org, state in rows))
    return len(rows)


def _subject(cycle: StoredCycle, instant: Instant, kind: str, digest_of: str | None = None) -> str:
    milestone = instant.milestone
    return subject_for(
        kind,
        cycle_id=cycle.id,
        milestone_id=milestone.id,
        milestone_title_th=milestone.title_th,
        milestone_title_en=milestone.title_en,
        due=milestone.due,
        offset_days=instant.offset,
        digest_of=digest_of,
    )


# Notices go to deliverables still unmet at the instant; one that arrived after the instant
# (an event entered before this tick ran late) gets the notice recorded as skipped.
_UNMET = (
    "s.cycle_id = :cycle AND s.milestone_id = :milestone AND o.active = :true "
    "AND (s.status IN ('pending', 'missed') OR (s.status IN ('met', 'late') AND s.met_at > :at))"
)

_ENQUEUE_NOTICES = f"""
    INSERT INTO outbox (key, cycle_id, agreement, milestone, kind, notice, recipient,
        recipient_kind, subject, send_at, status, attempts, next_attempt_at, message_id,
        template, template_version, context, created_at)
    SELECT {KEY_SQL}, s.cycle_id, o.id, s.milestone_id, :kind, :kind,
        CASE WHEN :to_supervisor = 1 THEN o.supervisor_email ELSE o.email END,
        CASE WHEN :to_supervisor = 1 THEN 'supervisor' ELSE o.kind END,
        :subject, :at,
        CASE WHEN s.status IN ('met', 'late') THEN 'skipped' ELSE :status END,
        0, :at, {MESSAGE_ID_SQL},
        :template, :version, '{{{{}}}}', :now
    FROM milestone_status s
    JOIN agreements a ON a.pk = s.agreement_pk
    JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id
    WHERE {_UNMET} {{receivers}}
    ON CONFLICT (key) DO NOTHING
    """
# A split notice concerns some receivers only (see Instant): filter them in the same statement.
_RECEIVERS = {
    "all": _ENQUEUE_NOTICES.format(receivers=""),
    "only": _ENQUEUE_NOTICES.format(receivers="AND o.id IN :orgs"),
    "besides": _ENQUEUE_NOTICES.format(receivers="AND o.id NOT IN :orgs"),
}
_NOTICE_STATEMENTS = {
    name: text(sql).bindparams(bindparam("orgs", expanding=True)) if name != "all" else text(sql)
    for name, sql in _RECEIVERS.items()
}


def _notice_statement(instant: Instant) -> tuple[TextClause, dict[str, Any]]:
    if instant.only is not None:
        return _NOTICE_STATEMENTS["only"], {"orgs": list(instant.only)}
    if instant.besides:
        return _NOTICE_STATEMENTS["besides"], {"orgs": list(instant.besides)}
    return _NOTICE_STATEMENTS["all"], {}


def _enqueue_notices(
    conn: Connection, cycle: StoredCycle, instant: Instant, stale: bool, now: int
) -> int:
    milestone = instant.milestone
    assert milestone.due is not None
    kind = instant.what
    statement, receivers = _notice_statement(instant)
    result = conn.execute(
        statement,
        {
            **receivers,
            **per_org_key(cycle.id, milestone.id, milestone.due.isoformat(), kind, instant.offset),
            "cycle": cycle.id,
            "milestone": milestone.id,
            "kind": kind,
            "to_supervisor": 1 if kind == "escalation" else 0,
            "subject": _subject(cycle, instant, kind),
            "at": instant.at,
            "status": "skipped" if stale else "pending",
            "template": f"mail/{kind}",
            "version": TEMPLATE_VERSION,
            "now": now,
            "true": True,
        },
    )
    return int(result.rowcount)


def _enqueue_digest(
    conn: Connection, cycle: StoredCycle, instant: Instant, stale: bool, now: int
) -> int:
    """OPDC's own deliverables: one digest per instant listing the agreements still pending."""
    milestone = instant.milestone
    assert milestone.due is not None
    rows = conn.execute(
        text(
            "SELECT o.id, o.name_th, o.kind, o.name_en FROM milestone_status s "
            "JOIN agreements a ON a.pk = s.agreement_pk "
            "JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id "
            f"WHERE {_UNMET} ORDER BY o.id"
        ),
        {"cycle": cycle.id, "milestone": milestone.id, "at": instant.at, "true": True},
    ).all()
    if not rows:
        return 0
    settings = cycle.settings
    escalation = instant.what == "escalation"
    context: dict[str, Any] = {"pending": [list(row) for row in rows]}  # id, name_th, kind, name_en
    context["digest_of"] = instant.what
    created = enqueue(
        conn,
        Notification(
            key=outbox_key(
                cycle.id,
                None,
                milestone.id,
                milestone.due.isoformat(),
                f"digest-{instant.what}",
                instant.offset,
            ),
            cycle=cycle.id,
            agreement=None,
            milestone=milestone.id,
            kind="digest",
            notice=instant.what,
            recipient=settings.opdc_supervisor_email if escalation else settings.opdc_email,
            recipient_kind="supervisor" if escalation else "opdc",
            subject=_subject(cycle, instant, "digest", instant.what),
            send_at=instant.at,
            status="skipped" if stale else "pending",
            context=context,
        ),
        now,
    )
    return int(created)
