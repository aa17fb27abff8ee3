"""One-click events, the evaluator's form and the waiver form.

``POST /agreements/{id}/fire`` fires an event that needs no data (sign, publish, approve a
change …) from the agreement page's buttons (:mod:`workflow.web.actions`) and goes back to the
page, which then says what happened (``?done=EVENT`` or ``?refused=CODE&detail=…``).
``/agreements/{id}/evaluate`` records the results per KPI, starting from the 12-month e-SAR
Card's results; ``/agreements/{id}/waive`` waives a deliverable not yet met.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from workflow.rules.access import Resource
from workflow.rules.errors import BadInput, RubrongError
from workflow.rules.kpis import KpiSetError, parse_results
from workflow.store.repository import Agreement, get_cycle, statuses
from workflow.store.users import User
from workflow.usecases.esar_drafts import submitted_cards
from workflow.usecases.event_data import stored_kpis
from workflow.web.actions import ONE_CLICK, waivable
from workflow.web.auth import services
from workflow.web.forms.common import (
    Outcome,
    agreement_of,
    fire_as,
    number_or_text,
    read_form,
    refused,
    text,
)
from workflow.web.pages.common import render, signed_in

router = APIRouter(include_in_schema=False)
MAX_DETAIL = 300


def back(org_id: str, **params: str) -> RedirectResponse:
    """To the agreement page, with what happened in the query string."""
    query = urlencode(params)
    return RedirectResponse(f"/agreements/{org_id}?{query}", status_code=303)


@router.post("/agreements/{agreement}/fire")
async def one_click(request: Request, agreement: str) -> Response:
    """Fire an event that needs no data; back to the agreement page saying how it went."""
    user = signed_in(request, Resource.AGREEMENTS)
    if not isinstance(user, User):
        return user
    form = await read_form(request)
    svc = services(request)
    found = agreement_of(svc, agreement)
    event = text(form, "event")
    try:
        if event not in ONE_CLICK:
            raise BadInput(f"{event or 'no event'}: not a one-click event; use its form")
        await fire_as(svc, user, found, event, None)
    except RubrongError as error:
        detail = error.message[:MAX_DETAIL]
        return back(found.org_id, refused=str(error.exit_code), detail=detail)
    return back(found.org_id, done=event)


def _card_results(svc: Any, found: Agreement) -> dict[str, Any]:
    with svc.db.read() as conn:
        data = submitted_cards(conn, found.cycle_id, "sar12").get(found.org_id, {})
    card = data.get("card")
    rows = card if isinstance(card, list) else []
    return {row["kpi"]: row.get("result") for row in rows if isinstance(row, dict) and "kpi" in row}


@router.api_route("/agreements/{agreement}/evaluate", methods=["GET", "POST"])
async def evaluate_form(request: Request, agreement: str) -> Response:
    """Results per KPI, prefilled from the 12-month card; fires ``evaluate``."""
    user = signed_in(request, Resource.AGREEMENTS)
    if not isinstance(user, User):
        return user
    svc = services(request)
    found = agreement_of(svc, agreement)
    values = {
        key: "" if value is None else str(value) for key, value in _card_results(svc, found).items()
    }
    outcome = Outcome()
    if request.method == "POST":
        form = await read_form(request)
        values = {str(kpi["id"]): text(form, f"result-{kpi['id']}") for kpi in found.kpis or ()}
        results = {key: number_or_text(value) for key, value in values.items() if value}
        try:
            await fire_as(svc, user, found, "evaluate", {"results": results})
            return back(found.org_id, done="evaluate")
        except RubrongError as error:
            outcome = refused(error, _result_errors(svc, found, results, error))
    return render(
        request,
        "evaluate.html.j2",
        user,
        status_code=outcome.status,
        row=found,
        values=values,
        outcome=outcome,
    )


def _result_errors(
    svc: Any, found: Agreement, results: dict[str, Any], error: RubrongError
) -> dict[str, str]:
    """The results' problems by KPI (``result-ID``), from the engine's own check."""
    if not isinstance(error, BadInput) or not found.kpis:
        return {}
    with svc.db.read() as conn:
        cycle = get_cycle(conn, found.cycle_id)
    kpis = stored_kpis(found, cycle.settings) or ()
    try:
        parse_results({"results": results}, kpis)
    except KpiSetError as problems:
        errors: dict[str, str] = {}
        for problem in problems.problems:
            hit = next((k.id for k in kpis if f'"{k.id}"' in problem), None)
            errors.setdefault(f"result-{hit}" if hit else "results", problem)
        return errors
    return {}


@router.api_route("/agreements/{agreement}/waive", methods=["GET", "POST"])
async def waive_form(request: Request, agreement: str) -> Response:
    """Waive a deliverable that is not yet met (admin), with a reason."""
    user = signed_in(request, Resource.AGREEMENTS, Resource.MILESTONES)
    if not isinstance(user, User):
        return user
    svc = services(request)
    found = agreement_of(svc, agreement)
    with svc.db.read() as conn:
        cycle = get_cycle(conn, found.cycle_id)
        choices = waivable(found, cycle.settings.milestones, statuses(conn, found.pk))
    values = {"milestone": "", "reason": ""}
    outcome = Outcome()
    if request.method == "POST":
        form = await read_form(request)
        values = {"milestone": text(form, "milestone"), "reason": text(form, "reason")}
        try:
            await fire_as(svc, user, found, "waive", values)
            return back(found.org_id, done="waive")
        except RubrongError as error:
            outcome = refused(error)
    return render(
        request,
        "esar_waive.html.j2",
        user,
        status_code=outcome.status,
        row=found,
        choices=choices,
        values=values,
        outcome=outcome,
    )
