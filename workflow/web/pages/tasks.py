"""Where people land: ``/`` sends a province, group or agency to its own agreement and OPDC
roles (admin, committee, evaluator, auditor) to ``/queue``, the agreements waiting for OPDC.

Queue steps (an agreement may wait at two at once, e.g. an audit and a change request):

| step | waiting when | acted on by |
|---|---|---|
| negotiation | ``proposed`` with a KPI off the approved list; ``negotiating`` | admin, committee |
| agreement | ``proposed`` with every KPI on the approved list | admin, committee |
| signing | ``agreed`` | admin |
| kpi_audit | ``template_submitted`` | admin |
| change_request | a change request is open | admin |
| evaluation | ``sar12_submitted``; the SAR 12 waived where ``evaluate`` may go | evaluator |
| approval | ``evaluated`` | admin |
| incentives | ``results_approved`` | admin |
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection, select

from states.machine import EVENTS
from workflow.rules.access import Resource
from workflow.rules.timeutil import format_instant
from workflow.store.repository import (
    STATUSES,
    Agreement,
    StoredCycle,
    get_cycle,
    latest_cycle_id,
    list_agreements,
)
from workflow.store.users import User
from workflow.web.auth import services
from workflow.web.i18n import QUEUE_STEPS
from workflow.web.pages.common import Paging, int_param, page_url, render, signed_in

router = APIRouter(include_in_schema=False)
PARTY_KINDS = ("province", "group", "agency")
STEPS = tuple(QUEUE_STEPS)
STEP_ROLES: dict[str, tuple[str, ...]] = {
    "negotiation": ("admin", "committee"),
    "agreement": ("admin", "committee"),
    "signing": ("admin",),
    "kpi_audit": ("admin",),
    "change_request": ("admin",),
    "evaluation": ("evaluator",),
    "approval": ("admin",),
    "incentives": ("admin",),
}
SIMPLE_STEPS = {
    "negotiating": "negotiation",
    "agreed": "signing",
    "template_submitted": "kpi_audit",
    "sar12_submitted": "evaluation",
    "evaluated": "approval",
    "results_approved": "incentives",
}
# States ``evaluate`` leaves only when the SAR 12 is waived (its guarded transitions).
EVALUATE_IF_WAIVED = frozenset(
    source
    for transition in EVENTS["evaluate"].transitions
    if transition.guards
    for source in transition.sources
)


@dataclass(frozen=True)
class QueueItem:
    """An agreement waiting at a step."""

    step: str
    agreement: Agreement
    detail: str  # off-list KPI ids, the change request's reason…


def _sar12_waived(conn: Connection, cycle: StoredCycle) -> set[int]:
    """Agreements whose SAR 12 (the deliverable ``submit_sar12`` meets) is waived."""
    sar12 = next((m for m in cycle.settings.milestones if m.event == "submit_sar12"), None)
    if sar12 is None:
        return set()
    query = select(STATUSES.c.agreement_pk).where(
        STATUSES.c.cycle_id == cycle.id,
        STATUSES.c.milestone_id == sar12.id,
        STATUSES.c.status == "waived",
    )
    return {pk for (pk,) in conn.execute(query)}


def queue_items(conn: Connection, cycle: StoredCycle) -> list[QueueItem]:
    """Every agreement waiting for OPDC, at each step it waits at, oldest wait first."""
    approved = set(cycle.settings.scoring.approved_kpis)
    waived = _sar12_waived(conn, cycle)
    items: list[QueueItem] = []
    for a in list_agreements(conn, cycle.id, None):
        if a.state == "proposed":
            off = [str(k["id"]) for k in a.kpis or () if k["id"] not in approved]
            items.append(QueueItem("negotiation" if off else "agreement", a, ", ".join(off)))
        elif a.state in SIMPLE_STEPS:
            items.append(QueueItem(SIMPLE_STEPS[a.state], a, ""))
        elif a.state in EVALUATE_IF_WAIVED and a.pk in waived:
            items.append(QueueItem("evaluation", a, "sar12 waived"))
        if a.change_request is not None:
            reason = str(a.change_request.get("reason", ""))
            items.append(QueueItem("change_request", a, reason))
    items.sort(key=lambda i: (i.agreement.last_event_at or 0, i.agreement.org_id, i.step))
    return items


def matches(agreement: Agreement, kind: str, group: str, text: str) -> bool:
    """Whether an agreement passes the kind, group and free-text filters."""
    if kind and agreement.kind != kind:
        return False
    if group and group not in (agreement.group_id, agreement.org_id):
        return False
    if text:
        needle = text.casefold()
        haystack = " ".join((agreement.org_id, agreement.name_th, agreement.name_en or ""))
        return needle in haystack.casefold()
    return True


@router.get("/")
def home(request: Request) -> Response:
    """A party to its own agreement; OPDC roles to the queue."""
    user = signed_in(request)
    if not isinstance(user, User):
        return user
    if user.role.kind in PARTY_KINDS and user.role.org:
        return RedirectResponse(f"/agreements/{user.role.org}", status_code=303)
    return RedirectResponse("/queue", status_code=303)


@router.get("/queue")
def queue_page(
    request: Request, step: str = "", kind: str = "", group: str = "", q: str = "", page: str = ""
) -> Response:
    """The agreements waiting for OPDC, filterable by step, kind, group and text, with counts."""
    user = signed_in(request, Resource.AGREEMENTS)
    if not isinstance(user, User):
        return user
    q = q.strip()[:100]
    with services(request).db.read() as conn:
        if latest_cycle_id(conn) is None:
            return render(request, "queue.html.j2", user, cycle=None)
        cycle = get_cycle(conn, None)
        items = queue_items(conn, cycle)
        groups = [
            (a.org_id, a.name_th, a.name_en)
            for a in list_agreements(conn, cycle.id, None)
            if a.kind == "group"
        ]
    filtered = [i for i in items if matches(i.agreement, kind, group, q)]
    counts = Counter(i.step for i in filtered)
    shown = [i for i in filtered if not step or i.step == step]
    paging = Paging.of(int_param(page), len(shown))
    rows: list[dict[str, Any]] = [
        {
            "step": i.step,
            "agreement": i.agreement,
            "detail": i.detail,
            "since": format_instant(i.agreement.last_event_at),
            "yours": user.role.kind in STEP_ROLES[i.step],
        }
        for i in paging.rows(shown)
    ]
    return render(
        request,
        "queue.html.j2",
        user,
        cycle=cycle.settings,
        steps=STEPS,
        step_roles=STEP_ROLES,
        counts=counts,
        total=len(filtered),
        rows=rows,
        paging=paging,
        groups=groups,
        kinds=PARTY_KINDS,
        selected={"step": step, "kind": kind, "group": group, "q": q},
        page_url=lambda **changes: page_url(request, **changes),
    )
