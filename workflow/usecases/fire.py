"""Firing one event: checks in CONTRACT.md's order, then one all-or-nothing transaction.

Order of checks: usage and unknown names (2) → authorisation (4) → an effective time before
the agreement's last event (2) → state and guards (3) → data (2). The write is optimistic:
the agreement row is read without a lock, and the UPDATE only matches the version that was
read; if someone else got there first nothing is written and the caller gets exit 5.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from sqlalchemy import Connection

from notifications.dates import thai_date
from notifications.keys import outbox_key
from notifications.subjects import subject_for
from states.errors import EventRefused
from states.machine import EVENTS, GuardContext, apply_event
from workflow.config.model import CHANGE_CUTOFF_ID, Cycle, Milestone
from workflow.rules.clock import Clock
from workflow.rules.errors import BadInput, ConcurrentChange, NotAllowed, NotAuthorised, quoted
from workflow.rules.roles import Role, authorise, parse_role
from workflow.rules.timeutil import DAY_SECONDS, bangkok_date, deadline_instant, format_instant
from workflow.store.database import Database, hot
from workflow.store.history import NewEntry, append
from workflow.store.outbox import NOTICE_KINDS, Notification, enqueue
from workflow.store.repository import Agreement, Status, StoredCycle, read_for_fire
from workflow.store.security import record_refusal
from workflow.usecases.event_data import Effects, interpret
from workflow.usecases.score import agreement_score


@dataclass(frozen=True)
class FireRequest:
    """One event as a user asked for it."""

    agreement: str
    event: str
    role: str
    at: int | None = None
    data: dict[str, Any] | None = None
    cycle: str | None = None


def fire(db: Database, clock: Clock, request: FireRequest) -> Agreement:
    """Apply one event and return the agreement as it now stands.

    The hot path, on one connection: one read (a single statement: the cycle, the agreement
    with its organisation, and the statuses of the milestones this event looks at), the checks
    in memory, then one write transaction (chain lock, version-checked UPDATE, the statuses and
    mail the event touches, the history entry, a KPI version). The returned row is built from
    what was written, not read back.
    """
    role = parse_role(request.role)
    if request.event not in EVENTS:
        raise BadInput(f"unknown event {quoted(request.event)} (events: {', '.join(EVENTS)})")
    data = request.data or {}
    if data:
        try:  # the history prints data as JSON: 1e400 (→ Infinity) would make that invalid
            json.dumps(data, allow_nan=False)
        except ValueError:
            raise BadInput("data: numbers must be finite (JSON has no Infinity or NaN)") from None
    event = request.event
    with db.connect() as conn:  # one connection: the read, then the write transaction
        cycle, agreement, current = read_for_fire(
            conn, request.cycle, request.agreement, partial(_statuses_needed, event, data)
        )
        try:
            authorise(role, event, agreement.org_id, agreement.kind)
        except NotAuthorised as refusal:
            record_refusal(db, clock, str(role), agreement.org_id, f"fire {event}", refusal)
            raise
        now = clock.now()
        at = now if request.at is None else request.at
        _check_time(agreement, at)
        new_state = _state_and_guards(event, at, data, agreement, cycle, current)
        effects = interpret(event, data, agreement, cycle.settings, agreement.state)
        _test_hook("read")
        with db.transaction(conn):
            return _write(
                conn, db, cycle, agreement, current, event, new_state, effects, role, at, now, data
            )


def _check_time(agreement: Agreement, at: int) -> None:
    """Exit 2 for an effective time before the agreement's last event."""
    if agreement.last_event_at is not None and at < agreement.last_event_at:
        raise BadInput(
            f"effective time {format_instant(at)} is before the agreement's last event "
            f"({format_instant(agreement.last_event_at)})"
        )


def _state_and_guards(
    event: str,
    at: int,
    data: dict[str, Any],
    agreement: Agreement,
    cycle: StoredCycle,
    current: dict[str, Status],
) -> str:
    """The state after ``event``; exit 3 when the state or a guard forbids it now."""
    ctx = _guard_context(event, at, data, agreement, cycle, current)
    try:
        return apply_event(event, agreement.state, ctx)
    except EventRefused as refused:  # the machine's refusal, in the engine's terms (exit 3)
        raise NotAllowed(refused.message) from refused


def events_allowed_now(
    role: Role,
    at: int,
    agreement: Agreement,
    cycle: StoredCycle,
    current: dict[str, Status],
) -> list[str]:
    """The events ``role`` could fire on ``agreement`` at ``at``: those that pass the same
    authorisation, effective-time, state and guard checks as :func:`fire`, in declared order.

    Read-only (nothing is logged or written); data is not considered, so an event whose data
    is checked last (a KPI set, a card, ``waive``'s target) may still be refused with exit 2.
    ``current`` holds the agreement's milestone statuses (``repository.statuses``).
    """
    allowed: list[str] = []
    try:
        _check_time(agreement, at)
    except BadInput:
        return allowed
    for event in EVENTS:
        try:
            authorise(role, event, agreement.org_id, agreement.kind)
            _state_and_guards(event, at, {}, agreement, cycle, current)
        except (NotAuthorised, NotAllowed):
            continue
        allowed.append(event)
    return allowed


def _statuses_needed(event: str, data: dict[str, Any], settings: Cycle) -> list[str]:
    """The milestones whose status ``event`` looks at: those it meets, the SAR 12 for
    ``evaluate``'s guard, the target of ``waive``."""
    wanted = [milestone.id for milestone in settings.milestones if milestone.event == event]
    if event == "evaluate":
        sar12 = _sar12(settings.milestones)
        wanted += [sar12.id] if sar12 is not None else []
    elif event == "waive" and isinstance(data.get("milestone"), str):
        wanted.append(data["milestone"])
    return wanted


def _guard_context(
    event: str,
    at: int,
    data: dict[str, Any],
    agreement: Agreement,
    cycle: StoredCycle,
    current: dict[str, Status],
) -> GuardContext:
    """The facts the event's guards look at (each computed only for the events that need it)."""
    settings = cycle.settings
    ctx = GuardContext(at=at)
    ctx.change_open = agreement.change_request_json is not None
    ctx.published = agreement.published
    if event in ("agree", "start_negotiation") and agreement.state == "proposed":
        # Their guards apply from ``proposed`` only. Stored sets were validated when stored:
        # the guards need only the ids.
        approved = settings.scoring.approved_kpis
        ctx.off_list_kpis = [kpi["id"] for kpi in agreement.kpis or () if kpi["id"] not in approved]
    elif event == "request_change":
        cutoff = settings.milestone(CHANGE_CUTOFF_ID)
        if cutoff is not None and cutoff.due is not None:
            ctx.change_cutoff = deadline_instant(cutoff.due)
            ctx.change_cutoff_label = f"{cutoff.due.isoformat()} ({thai_date(cutoff.due)})"
    elif event == "evaluate":
        sar12 = _sar12(settings.milestones)
        ctx.sar12_waived = (
            sar12 is not None and getattr(current.get(sar12.id), "status", "") == "waived"
        )
    elif event == "waive":
        target = data.get("milestone")
        if isinstance(target, str) and target in current:
            ctx.waive_target = target
            ctx.waive_target_status = current[target].status
    return ctx


def _sar12(milestones: tuple[Milestone, ...]) -> Milestone | None:
    """The final self-assessment report: the deliverable met by ``submit_sar12``."""
    return next((m for m in milestones if m.event == "submit_sar12"), None)


# The hot statements: plain SQL run on the driver with parameter tuples (``store.hot``).
_SET_STATUS = (
    "UPDATE milestone_status SET status = ?, met_at = ?, late_business_days = ? "
    "WHERE agreement_pk = ? AND milestone_id = ?"
)
_WAIVE_STATUS = (
    "UPDATE milestone_status SET status = 'waived', late_business_days = NULL "
    "WHERE agreement_pk = ? AND milestone_id = ?"
)
_SKIP_NOTICES = (  # workflow.store.outbox.skip_pending for one agreement, precompiled
    "UPDATE outbox SET status = 'skipped' WHERE cycle_id = ? AND milestone = ? "
    f"AND status = 'pending' AND notice IN ({', '.join(repr(k) for k in NOTICE_KINDS)}) "
    "AND agreement = ?"
)
_INSERT_KPI_VERSION = (
    "INSERT INTO kpi_versions (agreement_pk, version, kpis, source_event, history_seq) "
    "VALUES (?, ?, ?, ?, ?)"
)
_JSON_COLUMNS = {"change_request": "change_request_json", "results": "results_json"}


def _write(
    conn: Connection,
    db: Database,
    cycle: StoredCycle,
    agreement: Agreement,
    current: dict[str, Status],
    event: str,
    new_state: str,
    effects: Effects,
    role: Any,
    at: int,
    now: int,
    data: dict[str, Any],
) -> Agreement:
    # The chain lock comes first, before any row: a tick's timer entries then see this fire
    # either wholly before or wholly after them, and the lock order can never deadlock.
    db.lock_chain(conn)
    values: dict[str, Any] = {
        "state": new_state,
        "version": agreement.version + 1,
        "last_event_at": at,
    }
    fields = dict(values)  # the same changes, as fields of the returned Agreement
    for column, value in effects.updates.items():
        if column in _JSON_COLUMNS:
            value = None if value is None else json.dumps(value, ensure_ascii=False)
            fields[_JSON_COLUMNS[column]] = value
        else:
            fields[column] = value
        values[column] = value
    kpis_text = None
    if effects.new_kpis is not None:
        kpis_text = json.dumps(effects.new_kpis, ensure_ascii=False)
        values["kpis"] = fields["kpis_json"] = kpis_text
        values["kpi_version"] = fields["kpi_version"] = agreement.kpi_version + 1
    if event == "allocate_incentive":
        # The tier follows from the score; it is recorded in the entry so the history shows it.
        values["tier"] = fields["tier"] = agreement_score(conn, cycle, agreement).get("tier")
        data = {**data, "tier": values["tier"]}
    assignments = ", ".join(f"{column} = ?" for column in values)
    result = hot(
        conn,
        f"UPDATE agreements SET {assignments} WHERE pk = ? AND version = ?",
        (*values.values(), agreement.pk, agreement.version),
    )
    if result.rowcount != 1:
        raise ConcurrentChange(
            f"{agreement.org_id} was changed by someone else at the same time; nothing was written"
        )
    _meet_deliverables(conn, cycle, agreement, current, event, at, now)
    if effects.waive is not None:
        _waive(conn, cycle, agreement, effects.waive)
    _test_hook("pause")
    (seq,) = append(
        conn,
        [
            NewEntry(
                cycle=cycle.id,
                agreement=agreement.org_id,
                kind="event",
                event=event,
                from_state=agreement.state,
                to_state=new_state,
                actor=str(role),
                at=at,
                recorded_at=now,
                data=data,
            )
        ],
    )
    if kpis_text is not None:
        hot(
            conn,
            _INSERT_KPI_VERSION,
            (agreement.pk, agreement.kpi_version + 1, kpis_text, event, seq),
        )
    return replace(agreement, **fields)


def _test_hook(stage: str) -> None:
    """Test hook, inert unless ``RUBRONG_TEST_PAUSE_IN_FIRE=SECONDS`` is set (tests only).

    Stage ``read``: the agreement is read, the write transaction not begun; a line on stderr
    says so. Stage ``pause``: inside the write transaction (chain lock held, agreement row
    updated, history entry not yet appended, nothing committed); a line on stderr says so, then
    it waits SECONDS, or until SIGUSR1 releases it, so tests/test_concurrency.py can race a second
    writer against it, release it when that writer has read, or SIGKILL it there.
    """
    pause = os.environ.get("RUBRONG_TEST_PAUSE_IN_FIRE")
    if not pause:
        return
    wait = stage == "pause" and hasattr(signal, "sigtimedwait")
    if wait:  # blocked before the line is written, so an early SIGUSR1 is not lost
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    sys.stderr.write(f"rubrong: test {stage} in fire\n")
    sys.stderr.flush()
    if wait:
        signal.sigtimedwait({signal.SIGUSR1}, float(pause))
    elif stage == "pause":
        time.sleep(float(pause))


def _meet_deliverables(
    conn: Connection,
    cycle: StoredCycle,
    agreement: Agreement,
    current: dict[str, Status],
    event: str,
    at: int,
    now: int,
) -> None:
    """Deliverables met by this event turn ``met`` or ``late``; their notices stop; receipts go."""
    settings = cycle.settings
    for milestone in settings.milestones:
        status = current.get(milestone.id)
        if milestone.event != event or status is None or status.status not in ("pending", "missed"):
            continue
        late_days: int | None = 0
        new_status = "met"
        if milestone.due is not None and at >= deadline_instant(milestone.due):
            new_status = "late"
            late_days = cycle.calendar.late_business_days(
                milestone.due, bangkok_date(at), settings.calendar.receiver_scope
            )
        hot(conn, _SET_STATUS, (new_status, at, late_days, agreement.pk, milestone.id))
        _skip_notices(conn, cycle.id, milestone.id, agreement.org_id)
        if milestone.actor == "organisation":
            _enqueue_receipt(conn, cycle, agreement, milestone, at, now, late_days)


def _enqueue_receipt(
    conn: Connection,
    cycle: StoredCycle,
    agreement: Agreement,
    milestone: Milestone,
    at: int,
    now: int,
    late_days: int | None,
) -> None:
    due = milestone.due.isoformat() if milestone.due else None
    too_old = now - at > cycle.settings.notifications.catch_up_days * DAY_SECONDS
    subject = subject_for(
        "receipt",
        cycle_id=cycle.id,
        milestone_id=milestone.id,
        milestone_title_th=milestone.title_th,
        milestone_title_en=milestone.title_en,
        due=milestone.due,
        offset_days=None,
    )
    enqueue(
        conn,
        Notification(
            key=outbox_key(cycle.id, agreement.org_id, milestone.id, due, "receipt", 0),
            cycle=cycle.id,
            agreement=agreement.org_id,
            milestone=milestone.id,
            kind="receipt",
            notice=None,
            recipient=agreement.email,
            recipient_kind=agreement.kind,
            subject=subject,
            send_at=at,
            status="skipped" if too_old else "pending",
            context={"event_at": at, "late_business_days": late_days},
        ),
        now,
    )


def _waive(conn: Connection, cycle: StoredCycle, agreement: Agreement, milestone_id: str) -> None:
    hot(conn, _WAIVE_STATUS, (agreement.pk, milestone_id))
    _skip_notices(conn, cycle.id, milestone_id, agreement.org_id)


def _skip_notices(conn: Connection, cycle_id: str, milestone_id: str, org_id: str) -> None:
    """The agreement's pending reminders, overdue notices and escalations of a milestone."""
    hot(conn, _SKIP_NOTICES, (cycle_id, milestone_id, org_id))
