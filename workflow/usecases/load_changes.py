"""``load --apply-changes``: what a changed cycle file does to statuses, timers and letters.

Deadlines that moved are re-judged (``rejudge``), the notices about the old date are withdrawn
and the timer instants of the new date made due again (``reopen_timers``), an organisation
joining late has the deadlines already processed ``waived`` (``waive_passed``), and a removed
organisation's pending notices are withdrawn (``withdraw_removed``); each organisation whose
own deadline moved gets a correction letter (``enqueue_corrections``). All set-based.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import Connection, bindparam, select, text, update

from notifications.render import TEMPLATE_VERSION
from notifications.subjects import subject_for
from workflow.config.model import Cycle
from workflow.rules.calendar import BusinessCalendar, business_calendar
from workflow.rules.timeutil import bangkok_date, day_start, deadline_instant
from workflow.store.outbox import KEY_SQL, MESSAGE_ID_SQL, NOTICE_KINDS, per_org_key
from workflow.store.repository import STATUSES
from workflow.usecases.tick import instants


def waive_passed(conn: Connection, cycle_id: str, first_new_pk: int, last_tick: int) -> None:
    """An organisation joining late: deadlines already processed are ``waived`` / ``closed``."""
    for kind, status in (("deliverable", "waived"), ("cutoff", "closed"), ("window", "closed")):
        conn.execute(
            text(
                "UPDATE milestone_status SET status = :status "
                "WHERE cycle_id = :cycle AND agreement_pk > :first AND milestone_id IN ("
                "  SELECT id FROM cycle_milestones WHERE cycle_id = :cycle AND kind = :kind"
                "  AND deadline IS NOT NULL AND deadline <= :last)"
            ),
            {
                "status": status,
                "cycle": cycle_id,
                "first": first_new_pk,
                "kind": kind,
                "last": last_tick,
            },
        )


def moved_milestones(cycle: Cycle, old_dues: dict[str, str | None]) -> set[str]:
    """Milestones that existed before and whose effective due date is now another one.

    Compared on the effective date, so a calendar change that moves a deadline under
    ``next_business_day`` counts, and a new title or reminder list does not.
    """
    return {
        m.id
        for m in cycle.milestones
        if m.id in old_dues and old_dues[m.id] != (m.due.isoformat() if m.due else None)
    }


def rejudge(
    conn: Connection, cycle: Cycle, last_tick: int | None, moved: set[str], recount: set[str]
) -> None:
    """Deadlines that ``moved`` into the future reopen; arrivals of ``recount`` are re-judged."""
    calendar = business_calendar(cycle.calendar)
    for milestone in cycle.milestones:
        if milestone.due is None or milestone.id not in moved | recount:
            continue
        deadline = deadline_instant(milestone.due)
        if milestone.id in moved and (last_tick is None or deadline > last_tick):
            reopened = "pending" if milestone.kind == "deliverable" else "open"
            conn.execute(
                update(STATUSES)
                .where(
                    STATUSES.c.cycle_id == cycle.id,
                    STATUSES.c.milestone_id == milestone.id,
                    STATUSES.c.status.in_(("missed", "closed")),
                )
                .values(status=reopened)
            )
        _rejudge_arrivals(conn, cycle, milestone.id, milestone.due, calendar)


def _rejudge_arrivals(
    conn: Connection, cycle: Cycle, milestone_id: str, due: dt.date, calendar: BusinessCalendar
) -> None:
    """``met`` / ``late`` and the late business days again, one UPDATE per arrival date.

    The deadline is a day boundary, so every arrival of one Bangkok date is judged alike.
    """
    deadline = deadline_instant(due)
    scope = cycle.calendar.receiver_scope
    arrivals = conn.execute(
        select(STATUSES.c.met_at)
        .distinct()
        .where(
            STATUSES.c.cycle_id == cycle.id,
            STATUSES.c.milestone_id == milestone_id,
            STATUSES.c.status.in_(("met", "late")),
        )
    ).scalars()
    days = sorted({bangkok_date(int(met_at)) for met_at in arrivals})
    if not days:
        return
    rows = []
    for day in days:
        late = day_start(day) >= deadline
        rows.append(
            {
                "first": day_start(day),
                "end": day_start(day + dt.timedelta(days=1)),
                "judged": "late" if late else "met",
                "days": calendar.late_business_days(due, day, scope) if late else 0,
            }
        )
    conn.execute(
        update(STATUSES)
        .where(
            STATUSES.c.cycle_id == cycle.id,
            STATUSES.c.milestone_id == milestone_id,
            STATUSES.c.status.in_(("met", "late")),
            STATUSES.c.met_at >= bindparam("first"),
            STATUSES.c.met_at < bindparam("end"),
        )
        .values(status=bindparam("judged"), late_business_days=bindparam("days")),
        rows,
    )


def withdraw_removed(conn: Connection, cycle_id: str, removed: list[str]) -> int:
    """A removed organisation stops moving: its pending notices become ``skipped``.

    Receipts stay (they acknowledge what did arrive); sent letters stay as they are.
    """
    if not removed:
        return 0
    result = conn.execute(
        text(
            "UPDATE outbox SET status = 'skipped' WHERE cycle_id = :cycle "
            "AND status = 'pending' AND notice IN :notices AND agreement IN :removed"
        ).bindparams(bindparam("notices", expanding=True), bindparam("removed", expanding=True)),
        {"cycle": cycle_id, "notices": list(NOTICE_KINDS), "removed": removed},
    )
    return int(result.rowcount)


def reopen_timers(conn: Connection, cycle: Cycle, moved: set[str]) -> None:
    """A milestone moved back to a date whose instants were already processed: due again.

    The timer keys include the due date, so only a date the milestone had before (moved away
    and back) has processed instants; the next tick processes them again, judging the
    deliverables reopened meanwhile. Letters are enqueued exactly once by key: one already
    sent (or skipped) for that date is not sent again.
    """
    keys = [i.key for i in instants(cycle) if i.milestone.id in moved]
    if keys:
        conn.execute(
            text("DELETE FROM timers_done WHERE cycle_id = :cycle AND key IN :keys").bindparams(
                bindparam("keys", expanding=True)
            ),
            {"cycle": cycle.id, "keys": keys},
        )


_CORRECTIONS = text(
    f"""
    INSERT INTO outbox (key, cycle_id, agreement, milestone, kind, notice, recipient,
        recipient_kind, subject, send_at, status, attempts, next_attempt_at, message_id,
        template, template_version, context, created_at)
    SELECT {KEY_SQL}, s.cycle_id, o.id, s.milestone_id, 'correction', 'correction', o.email,
        o.kind, :subject, :at, 'pending', 0, :at, {MESSAGE_ID_SQL}, 'mail/correction',
        :version, :context, :now
    FROM milestone_status s
    JOIN agreements a ON a.pk = s.agreement_pk
    JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id
    WHERE s.cycle_id = :cycle AND s.milestone_id = :milestone AND o.active = :true
        AND s.status IN ('pending', 'missed')
    ON CONFLICT (key) DO NOTHING
    """
)


def enqueue_corrections(
    conn: Connection,
    cycle: Cycle,
    old_dues: dict[str, str | None],
    moved: set[str],
    version: int,
    last_tick: int | None,
    now: int,
) -> int:
    """A correction letter to each organisation whose own deliverable's deadline moved.

    Only deliverables the organisation still owes (pending or missed); sent as of the latest
    processed instant (``last_tick``), so the next tick sends it; none before the first tick
    (nothing has been sent, and the reminders will carry the new date). The key holds the new
    date and the cycle-file version, so each applied change is announced once.
    """
    if last_tick is None:
        return 0
    created = 0
    for milestone in cycle.milestones:
        was = old_dues.get(milestone.id)
        if milestone.id not in moved or milestone.due is None or was is None:
            continue
        if milestone.kind != "deliverable" or milestone.actor != "organisation":
            continue
        due = milestone.due.isoformat()
        subject = subject_for(
            "correction",
            cycle_id=cycle.id,
            milestone_id=milestone.id,
            milestone_title_th=milestone.title_th,
            milestone_title_en=milestone.title_en,
            due=milestone.due,
            offset_days=None,
            previous_due=dt.date.fromisoformat(was),
        )
        result = conn.execute(
            _CORRECTIONS,
            {
                **per_org_key(cycle.id, milestone.id, due, "correction", version),
                "cycle": cycle.id,
                "milestone": milestone.id,
                "subject": subject,
                "at": last_tick,
                "version": TEMPLATE_VERSION,
                "context": json.dumps({"previous_due": was}),
                "now": now,
                "true": True,
            },
        )
        created += int(result.rowcount)
    return created
