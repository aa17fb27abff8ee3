"""The KPI table editor: ``propose_kpis``, ``agree`` with a negotiated set, ``request_change``.

One row per KPI (id, dimension, name_th, unit, direction, weight, baseline, five levels); rows
can be added and removed, and a few lines of script (``/forms/kpi_form.js``) show the weight and
level rules as one types. The server checks nothing itself: the set goes to
:func:`workflow.usecases.fire.fire`, whose data step is :func:`workflow.rules.kpis.parse_kpi_set`;
when it
refuses, the same function's problem list is shown next to the rows it names.
The change request form also carries the reason (external | budget) and the explanation, and
shows the ``change_requests`` cutoff; after it the engine's rule is shown (exit 3).
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from notifications.dates import thai_date
from workflow.config.model import CHANGE_CUTOFF_ID, Cycle
from workflow.rules.access import Resource
from workflow.rules.errors import BadInput, RubrongError
from workflow.rules.kpis import KpiSetError, parse_kpi_set
from workflow.store.repository import Agreement, get_cycle
from workflow.store.users import User
from workflow.usecases.event_data import CHANGE_REASONS
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
from workflow.web.pages.common import PAGE_HEADERS, render, signed_in, templates
from workflow.web.problems import NotFound

router = APIRouter(include_in_schema=False)
COLUMNS = ("id", "dimension", "name_th", "unit", "direction", "weight", "baseline")
LEVELS = ("level1", "level2", "level3", "level4", "level5")
KPI_EVENTS = ("propose_kpis", "agree")
_ROW = re.compile(r"^id-(\d{1,4})$")
_LABEL = re.compile(r'^KPI (?:"((?:[^"\\]|\\.)*)"|#(\d+)): ?')


def rows_from_form(form: FormData) -> list[dict[str, str]]:
    """The table's rows as typed (wholly empty rows left out), in the order shown."""
    indices = sorted({int(m.group(1)) for key in form if (m := _ROW.match(key))})
    rows = []
    for index in indices:
        row = {name: text(form, f"{name}-{index}") for name in (*COLUMNS, *LEVELS)}
        if any(row.values()):
            rows.append(row)
    return rows


def kpi_set(rows: list[dict[str, str]]) -> dict[str, Any]:
    """``{"kpis": [...]}`` from typed rows: numbers as numbers, empty fields left out (so the
    engine says which are missing), anything else as typed."""
    kpis = []
    for row in rows:
        item: dict[str, Any] = {}
        for name in ("id", "name_th", "unit", "direction"):
            if row[name]:
                item[name] = row[name]
        for name in ("dimension", "weight"):
            if row[name]:
                item[name] = number_or_text(row[name])
        item["baseline"] = number_or_text(row["baseline"]) if row["baseline"] else None
        levels = [row[name] for name in LEVELS]
        if any(levels):
            item["levels"] = [number_or_text(level) if level else None for level in levels]
        kpis.append(item)
    return {"kpis": kpis}


def rows_from_kpis(kpis: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """A stored KPI set as the table's rows."""
    rows = []
    for kpi in kpis or ():
        row = {name: "" if kpi.get(name) is None else str(kpi[name]) for name in COLUMNS}
        for name, level in zip(LEVELS, kpi.get("levels") or (), strict=False):
            row[name] = str(level)
        rows.append(row)
    return rows


def blank_rows(cycle: Cycle) -> list[dict[str, str]]:
    """One empty row per dimension of the cycle, to start from."""
    keys = list(cycle.scoring.dimension_weights or ("1", "2", "3", "4"))
    return [
        {**dict.fromkeys((*COLUMNS, *LEVELS), ""), "dimension": key, "direction": "higher"}
        for key in keys
    ]


def row_errors(rows: list[dict[str, str]], data: dict[str, Any], cycle: Cycle) -> dict[str, str]:
    """The KPI set's problems (the engine's own check) by row (``kpi-N``) or ``kpis``."""
    try:
        parse_kpi_set(data, cycle.scoring)
    except KpiSetError as error:
        errors: dict[str, list[str]] = {}
        for problem in error.problems:
            match = _LABEL.match(problem)
            key = "kpis"
            if match and match.group(2):
                key = f"kpi-{int(match.group(2)) - 1}"
            elif match:
                found = [
                    i
                    for i, row in enumerate(rows)
                    if row["id"] == json.loads(f'"{match.group(1)}"')
                ]
                key = f"kpi-{found[0]}" if found else "kpis"
            errors.setdefault(key, []).append(problem)
        return {key: "; ".join(messages) for key, messages in errors.items()}
    return {}


def _context(found: Agreement, cycle: Cycle) -> dict[str, Any]:
    weights = cycle.scoring.dimension_weights
    cutoff = cycle.milestone(CHANGE_CUTOFF_ID)
    return {
        "row": found,
        "dimension_weights": json.dumps(
            {key: float(value) for key, value in weights.items()} if weights else None
        ),
        "cutoff": cutoff.due.isoformat() if cutoff and cutoff.due else None,
        "cutoff_th": thai_date(cutoff.due) if cutoff and cutoff.due else None,
        "approved": sorted(cycle.scoring.approved_kpis),
        "reasons": CHANGE_REASONS,
    }


async def _form(request: Request, agreement: str, event: str, template: str) -> Response:
    user = signed_in(request, Resource.AGREEMENTS)
    if not isinstance(user, User):
        return user
    svc = services(request)
    found = agreement_of(svc, agreement)
    with svc.db.read() as conn:
        cycle = get_cycle(conn, found.cycle_id).settings
    rows = rows_from_kpis(found.kpis) or blank_rows(cycle)
    values = {"reason": "", "explanation": ""}
    outcome = Outcome()
    if request.method == "POST":
        form = await read_form(request)
        rows = rows_from_form(form)
        data = kpi_set(rows)
        if event == "request_change":
            values = {"reason": text(form, "reason"), "explanation": text(form, "explanation")}
            data = {**values, **data}
        try:
            await fire_as(svc, user, found, event, data)
            return RedirectResponse(f"/agreements/{found.org_id}?done={event}", status_code=303)
        except RubrongError as error:
            errors = row_errors(rows, data, cycle) if isinstance(error, BadInput) else {}
            outcome = refused(error, errors)
    return render(
        request,
        template,
        user,
        status_code=outcome.status,
        event=event,
        rows=rows,
        values=values,
        outcome=outcome,
        **_context(found, cycle),
    )


@router.api_route("/agreements/{agreement}/kpis/{event}", methods=["GET", "POST"])
async def kpi_form(request: Request, agreement: str, event: str) -> Response:
    """Propose a KPI set, or agree with a negotiated one."""
    if event not in KPI_EVENTS:
        raise NotFound(f"no KPI form for {event[:40]!r}")
    return await _form(request, agreement, event, "kpi_form.html.j2")


@router.api_route("/agreements/{agreement}/change-request", methods=["GET", "POST"])
async def change_request_form(request: Request, agreement: str) -> Response:
    """Request a change of KPIs, weights or criteria (until the cutoff)."""
    return await _form(request, agreement, "request_change", "change_request.html.j2")


@router.get("/forms/kpi_form.js")
def kpi_script(request: Request) -> Response:
    """The KPI table's few lines of script (served from here: pages allow only own scripts)."""
    body = templates.env.get_template("kpi_form.js.j2").render()
    headers = {**PAGE_HEADERS, "Cache-Control": "no-cache"}
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
