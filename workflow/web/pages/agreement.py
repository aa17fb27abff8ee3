"""One agreement's page: what the organisation must do next, what is late and what it costs,
its state (on the diagram) and timeline, its mail, KPI versions, score and the actions the
signed-in role may fire now.

A province, group or agency lands here (``/`` redirects it to its own agreement). Agreements
are public to every signed-in user; the mail block appears only when
:func:`workflow.rules.access.outbox_scope` lets the reader see this organisation's letters.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from states.machine import INITIAL
from workflow.rules.access import Resource, outbox_scope
from workflow.rules.scoring import late_penalty
from workflow.rules.timeutil import TimeFormatError, bangkok_date, deadline_instant, parse_date
from workflow.store.repository import Agreement, StoredCycle, get_cycle
from workflow.store.users import User
from workflow.store.views import (
    OutboxFilter,
    agreement_status,
    history_rows,
    kpi_version_rows,
    milestone_rows,
    outbox_page,
)
from workflow.usecases.score import agreement_score
from workflow.web.actions import Action, allowed_actions
from workflow.web.api import find_agreement
from workflow.web.auth import services
from workflow.web.diagram_svg import state_diagram_svg
from workflow.web.i18n import EVENT_WORDS, STATE_WORDS, Words
from workflow.web.ical_feed import feed_panel
from workflow.web.pages.common import render, signed_in, words_for
from workflow.web.problems import NotFound

router = APIRouter(include_in_schema=False)
MAIL_ROWS = 20  # the newest letters shown on the page; the outbox page has the rest


def _day(value: dt.date | str | None) -> dt.date | None:
    """A milestone row's date (stored as ``YYYY-MM-DD`` text)."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def due_soon(cycle: StoredCycle, milestones: list[dict[str, Any]], today: dt.date) -> list[Any]:
    """The organisation's pending deliverables, earliest first, with business days left.

    Days are counted as the engine counts late days (:meth:`BusinessCalendar.late_business_days`
    on the ``receiver_scope`` calendar): the business days after today up to the due day.
    """
    calendar, scope = cycle.calendar, cycle.settings.calendar.receiver_scope
    rows = []
    for m in milestones:
        if m["kind"] != "deliverable" or m["actor"] != "organisation" or m["status"] != "pending":
            continue
        due = _day(m["due"])
        left = None if due is None else calendar.late_business_days(today, due, scope)
        rows.append({**m, "days_left": left, "today": due == today})
    rows.sort(key=lambda r: (r["due"] is None, str(r["due"] or "")))
    return rows


def overdue_now(cycle: StoredCycle, milestones: list[dict[str, Any]], today: dt.date) -> list[Any]:
    """Missed milestones with the business days late so far and, for the penalised milestone,
    the penalty accruing (``penalty_per_business_day`` × those days, as ``score`` will count)."""
    calendar, scope = cycle.calendar, cycle.settings.calendar.receiver_scope
    penalised = cycle.settings.penalised
    rows = []
    for m in milestones:
        due = _day(m["due"])
        if m["status"] != "missed" or due is None:
            continue
        days = calendar.late_business_days(due, today, scope)
        penalty = None
        per_day = None
        if penalised is not None and penalised.id == m["milestone"]:
            per_day = penalised.penalty_per_business_day
            penalty = late_penalty(days, per_day)
        rows.append(
            {
                **m,
                "days_late": days,
                "penalty": None if penalty is None else f"{penalty:.4f}",
                "per_day": None if per_day is None else f"{per_day:.4f}",
                "own": m["actor"] == "organisation",
            }
        )
    return rows


def allowed(conn: Connection, found: Agreement, user: User, now: int) -> list[Action]:
    """The events ``user`` may fire on the agreement now, as buttons and links (and nothing
    else: :func:`workflow.web.actions.allowed_actions` asks the engine)."""
    return allowed_actions(conn, found, user, at=now)


def diagram(words: Words, current: str) -> str:
    """The machine with ``current`` highlighted, labelled in the reader's language."""
    index = 0 if words.lang == "th" else 1
    return state_diagram_svg(
        {state: pair[index] for state, pair in STATE_WORDS.items()},
        {event: pair[index] for event, pair in EVENT_WORDS.items()},
        current,
        words("diagram"),
    )


@router.get("/agreements/{agreement}")
def agreement_page(request: Request, agreement: str, as_of: str = "") -> Response:
    """One agreement: tasks and penalties, state, history (optionally as of a day), mail,
    KPI versions, score and the signed-in role's actions."""
    user = signed_in(
        request,
        Resource.AGREEMENTS,
        Resource.MILESTONES,
        Resource.SCORES,
        Resource.HISTORY,
        Resource.KPI_VERSIONS,
    )
    if not isinstance(user, User):
        return user
    when: int | None = None
    bad_date = False
    if as_of:
        try:
            when = deadline_instant(parse_date(as_of)) - 1  # by the end of that day
        except (TimeFormatError, OverflowError, ValueError):
            bad_date = True
    svc = services(request)
    today = bangkok_date(svc.clock.now())
    scope = outbox_scope(user.role)
    with svc.db.read() as conn:
        try:
            found = find_agreement(conn, None, agreement)
        except NotFound:
            return render(request, "error.html.j2", user, status_code=404, message="not_found")
        cycle = get_cycle(conn, found.cycle_id)
        row = agreement_status(conn, found)
        milestones = milestone_rows(conn, found.cycle_id, [found.org_id])
        entries = history_rows(conn, found.cycle_id, found.org_id, when)
        card = agreement_score(conn, cycle, found)
        versions = kpi_version_rows(conn, found.cycle_id, found.org_id)
        mail_total, mail = 0, list[dict[str, Any]]()
        if scope.allows(found.org_id):
            mail_total, mail = outbox_page(
                conn, scope, OutboxFilter(agreement=found.org_id), MAIL_ROWS, newest_first=True
            )
        actions = allowed(conn, found, user, svc.clock.now())
        feed = feed_panel(conn, found, user)  # the calendar feed: own organisation, admins
    moves = [entry["to"] for entry in entries if entry["to"] is not None]
    return render(
        request,
        "agreement.html.j2",
        user,
        row=row,
        found=found,
        milestones=milestones,
        titles={m.id: m for m in cycle.settings.milestones},
        entries=list(reversed(entries)),
        card=card,
        as_of=as_of if when is not None else "",
        bad_date=bad_date,
        state_then=moves[-1] if moves else INITIAL,
        today=today,
        due_soon=due_soon(cycle, milestones, today),
        overdue=overdue_now(cycle, milestones, today),
        mail=mail,
        mail_total=mail_total,
        may_read_mail=scope.allows(found.org_id),
        versions=list(reversed(versions)),
        actions=actions,
        feed=feed,
        diagram_svg=diagram(words_for(request), row["state"]),
    )
