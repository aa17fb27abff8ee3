"""The dashboard: server-rendered pages (``templates/web``) over the same read views as the API.

Sign in with an API token (kept in an HttpOnly, SameSite=Strict cookie); then the organisation ×
milestone compliance matrix with filters, an agreement's page with its history "as of" a day,
the outbox, the ranked scores and the state diagram. Thai by default, ``?lang=en`` for English
(remembered in a cookie). Pages only read: every change goes through the API or the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from states.machine import INITIAL, mermaid
from workflow.history import verify
from workflow.reporting import report_rows
from workflow.repository import get_cycle, latest_cycle_id
from workflow.scores import agreement_score
from workflow.timeutil import TimeFormatError, deadline_instant, parse_date
from workflow.users import User
from workflow.views import agreement_status, history_rows, milestone_rows, outbox_rows, status_rows
from workflow.web.api import find_agreement
from workflow.web.auth import COOKIE, check_token, cookie_user, services
from workflow.web.i18n import Words, pick_language
from workflow.web.problems import NotFound

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates" / "web"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["json_text"] = lambda value: json.dumps(value, ensure_ascii=False, indent=1)
router = APIRouter(include_in_schema=False)
LANG_COOKIE = "rubrong_lang"
STATUS_CHOICES = ("pending", "met", "late", "missed", "waived", "open", "closed")
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _render(
    request: Request, name: str, user: User | None, status_code: int = 200, **context: Any
) -> Response:
    query_lang = request.query_params.get("lang")
    lang = pick_language(query_lang, request.cookies.get(LANG_COOKIE))
    switch = dict(request.query_params)
    switch["lang"] = "en" if lang == "th" else "th"
    response = templates.TemplateResponse(
        request,
        name,
        {
            "t": Words(lang),
            "lang": lang,
            "user": user,
            "switch_url": f"{request.url.path}?{urlencode(switch)}",
            **context,
        },
        status_code=status_code,
        headers=PAGE_HEADERS,
    )
    if query_lang in ("th", "en"):
        response.set_cookie(LANG_COOKIE, query_lang, max_age=365 * 86400, samesite="lax")
    return response


def _signed_in(request: Request) -> User | Response:
    user = cookie_user(request)
    if user is None:
        response = RedirectResponse("/signin", status_code=303)
        if request.cookies.get(COOKIE):
            response.delete_cookie(COOKIE)
        return response
    return user


@router.get("/signin")
def signin_page(request: Request) -> Response:
    """The sign-in form."""
    return _render(request, "signin.html.j2", None, error=False)


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Check the posted token; on success keep it in the cookie and go to the matrix."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    svc = services(request)
    user = await run_in_threadpool(check_token, svc, token, "POST /signin") if token else None
    if user is None:
        return _render(request, "signin.html.j2", None, status_code=401, error=True)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=12 * 3600,
    )
    return response


@router.post("/signout")
def signout() -> Response:
    """Forget the cookie."""
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/")
def matrix(request: Request, group: str = "", milestone: str = "", status: str = "") -> Response:
    """The organisation × milestone compliance matrix, filtered by group, milestone, status."""
    user = _signed_in(request)
    if not isinstance(user, User):
        return user
    with services(request).db.read() as conn:
        if latest_cycle_id(conn) is None:
            return _render(request, "matrix.html.j2", user, cycle=None)
        cycle = get_cycle(conn, None)
        agreements = status_rows(conn, cycle.id, None)
        cells = {(r["agreement"], r["milestone"]): r for r in milestone_rows(conn, cycle.id, None)}
    milestones = list(cycle.settings.milestones)
    columns = [m for m in milestones if not milestone or m.id == milestone]
    groups = [(a["agreement"], a["name_th"]) for a in agreements if a["kind"] == "group"]
    rows = []
    for agreement in agreements:
        if group and group not in (agreement["group"], agreement["agreement"]):
            continue
        shown = [cells.get((agreement["agreement"], m.id)) for m in columns]
        if status and not any(cell and cell["status"] == status for cell in shown):
            continue
        rows.append({"agreement": agreement, "cells": shown})
    return _render(
        request,
        "matrix.html.j2",
        user,
        cycle=cycle.settings,
        milestones=milestones,
        columns=columns,
        groups=groups,
        rows=rows,
        total=len(agreements),
        statuses=STATUS_CHOICES,
        selected={"group": group, "milestone": milestone, "status": status},
    )


@router.get("/agreements/{agreement}")
def agreement_page(request: Request, agreement: str, as_of: str = "") -> Response:
    """One agreement: state, milestones, score and its history, optionally as of a day."""
    user = _signed_in(request)
    if not isinstance(user, User):
        return user
    when: int | None = None
    bad_date = False
    if as_of:
        try:
            when = deadline_instant(parse_date(as_of)) - 1  # by the end of that day
        except (TimeFormatError, OverflowError, ValueError):
            bad_date = True
    with services(request).db.read() as conn:
        try:
            found = find_agreement(conn, None, agreement)
        except NotFound:
            return _render(request, "error.html.j2", user, status_code=404, message="not_found")
        row = agreement_status(conn, found)
        milestones = milestone_rows(conn, found.cycle_id, [found.org_id])
        entries = history_rows(conn, found.cycle_id, found.org_id, when)
        card = agreement_score(conn, get_cycle(conn, found.cycle_id), found)
    moves = [entry["to"] for entry in entries if entry["to"] is not None]
    return _render(
        request,
        "agreement.html.j2",
        user,
        row=row,
        milestones=milestones,
        entries=list(reversed(entries)),
        card=card,
        as_of=as_of if when is not None else "",
        bad_date=bad_date,
        state_then=moves[-1] if moves else INITIAL,
        today=dt.date.today().isoformat(),
    )


@router.get("/outbox")
def outbox_page(request: Request, status: str = "", kind: str = "") -> Response:
    """Every notification, filtered by status and kind."""
    user = _signed_in(request)
    if not isinstance(user, User):
        return user
    with services(request).db.read() as conn:
        rows = outbox_rows(conn)
    kinds = sorted({row["kind"] for row in rows})
    shown = [
        r for r in rows if (not status or r["status"] == status) and (not kind or r["kind"] == kind)
    ]
    return _render(
        request,
        "outbox.html.j2",
        user,
        rows=shown,
        total=len(rows),
        kinds=kinds,
        statuses=("pending", "sent", "failed", "skipped"),
        selected={"status": status, "kind": kind},
    )


@router.get("/scores")
def scores_page(request: Request) -> Response:
    """Every agreement ranked by final score, and whether the history chain verifies."""
    user = _signed_in(request)
    if not isinstance(user, User):
        return user
    with services(request).db.read() as conn:
        rows = [] if latest_cycle_id(conn) is None else report_rows(conn, None)
        chain = verify(conn).as_json()
    return _render(request, "scores.html.j2", user, rows=rows, chain=chain)


@router.get("/diagram")
def diagram_page(request: Request) -> Response:
    """The declared machine as mermaid text."""
    user = _signed_in(request)
    if not isinstance(user, User):
        return user
    return _render(request, "diagram.html.j2", user, mermaid=mermaid())
