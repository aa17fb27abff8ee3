"""The ranked scores (the ``report`` rows) with search and paging, the history chain's check,
and the report as CSV or XLSX exactly as ``rubrong report`` writes it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workflow.rules.access import Resource
from workflow.store.history import verify
from workflow.store.repository import latest_cycle_id
from workflow.store.users import User
from workflow.usecases.report import report_rows
from workflow.web.auth import services
from workflow.web.pages.common import Paging, int_param, page_url, render, signed_in
from workflow.web.pages.export import FORMATS, report_response

router = APIRouter(include_in_schema=False)
KINDS = ("province", "group", "agency")


@router.get("/scores")
def scores(
    request: Request, kind: str = "", q: str = "", page: str = "", download: str = ""
) -> Response:
    """Every agreement ranked by final score, and whether the history chain verifies."""
    user = signed_in(request, Resource.SCORES, Resource.HISTORY)
    if not isinstance(user, User):
        return user
    q = q.strip()[:100]
    with services(request).db.read() as conn:
        rows = [] if latest_cycle_id(conn) is None else report_rows(conn, None)
        chain = None if download in FORMATS else verify(conn).as_json()
    if download in FORMATS:
        return report_response(download, rows, "report")
    needle = q.casefold()
    shown = [
        r
        for r in rows
        if (not kind or r["kind"] == kind)
        and (not needle or needle in f"{r['agreement']} {r['name_th']}".casefold())
    ]
    paging = Paging.of(int_param(page), len(shown))
    return render(
        request,
        "scores.html.j2",
        user,
        rows=paging.rows(shown),
        paging=paging,
        chain=chain,
        kinds=KINDS,
        selected={"kind": kind, "q": q},
        page_url=lambda **changes: page_url(request, **changes),
    )
