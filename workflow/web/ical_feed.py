"""The organisation's read-only iCalendar feed over HTTP, and issuing its link from the page.

``GET /ical/{secret}/{org}.ics`` needs no session (calendar programs cannot sign in): the
secret in the path is the key (:mod:`workflow.usecases.ical_feeds`). The secret is a path segment,
not
a query parameter, so the URL ends in ``.ics`` (what calendar programs look for) and no client
drops or rewrites it. An unknown organisation, a wrong, revoked or another organisation's
secret all get the same 404, and each refusal is written to the security log (never the
secret). The answer carries a strong ETag over its bytes (``If-None-Match`` → 304) and
``Last-Modified``; ``Cache-Control: private, no-cache`` makes every poll revalidate, so a
revoked link stops at once even behind a cache.

``POST /agreements/{agreement}/ical`` (the agreement page's button, CSRF-checked) issues a new
link for the own organisation or, for admins, any; the URL is shown once, on a page that is
never cached. Links are dated by the wall clock, as sessions are (the service's may be virtual).
"""

from __future__ import annotations

import datetime as dt
import os
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import Connection

from workflow.rules.access import Resource
from workflow.rules.errors import BadInput, NotAuthorised
from workflow.store.repository import Agreement
from workflow.store.security import record_event, record_refusal
from workflow.store.users import User
from workflow.usecases.ical_feeds import (
    Feed,
    feed_calendar,
    feed_status,
    feed_url,
    issue_feed,
    open_feed,
)
from workflow.web.auth import services
from workflow.web.forms.common import agreement_of, read_form, text
from workflow.web.pages.common import render, signed_in
from workflow.web.session import PUBLIC_URL_ENV, client_address

router = APIRouter(include_in_schema=False)
CALENDAR_TYPE = "text/calendar; charset=utf-8"
NOT_FOUND = b"Not Found\n"
MAX_LOGGED = 64  # characters of the organisation segment written to the security log
FEED_HEADERS = {
    "Cache-Control": "private, no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def may_issue(user: User, found: Agreement) -> bool:
    """Admins, and the agreement's own province, group or agency."""
    return user.role.kind == "admin" or user.role.owns(found.org_id, found.kind)


def public_base(request: Request) -> str:
    """The web app's public URL: ``RUBRONG_PUBLIC_URL``, else the address this request used."""
    return os.environ.get(PUBLIC_URL_ENV, "").strip() or str(request.base_url)


def feed_panel(conn: Connection, found: Agreement, user: User) -> dict[str, Any] | None:
    """What the agreement page shows of the feed (None when ``user`` may not issue its link)."""
    if not may_issue(user, found):
        return None
    return feed_status(conn, found.cycle_id, found.org_id)


def _not_found() -> Response:
    return Response(
        NOT_FOUND,
        status_code=404,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _matches(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names this entity tag (weak comparison, or ``*``)."""
    if not header:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def _answer(request: Request, feed: Feed, org: str) -> Response:
    headers = {
        **FEED_HEADERS,
        "ETag": feed.etag,
        "Last-Modified": format_datetime(
            dt.datetime.fromtimestamp(feed.changed_at, tz=dt.UTC), usegmt=True
        ),
        "Content-Disposition": f'inline; filename="{org}.ics"',
    }
    if _matches(request.headers.get("if-none-match"), feed.etag):
        return Response(status_code=304, headers=headers)
    return Response(feed.body, media_type=CALENDAR_TYPE, headers=headers)


@router.api_route("/ical/{secret}/{org}.ics", methods=["GET", "HEAD"])
def ical_feed(request: Request, secret: str, org: str) -> Response:
    """The organisation's calendar, or the same 404 for any secret that does not open it."""
    svc = services(request)
    feed: Feed | None = None
    with svc.db.read() as conn:
        cycle, reason = open_feed(conn, secret, org)
        if cycle is not None:
            try:
                feed = feed_calendar(conn, cycle, org, public_base(request))
            except BadInput as exc:  # the cycle or agreement is gone
                reason = exc.message
    if feed is None:
        where = org[:MAX_LOGGED]
        record_refusal(
            svc.db,
            svc.clock,
            "anonymous",
            where,
            f"{request.method} /ical/…/{where}.ics [refused] from {client_address(request)}",
            NotAuthorised(f"calendar feed: {reason}"),
        )
        return _not_found()
    return _answer(request, feed, org)


@router.post("/agreements/{agreement}/ical")
async def issue_link(request: Request, agreement: str) -> Response:
    """Issue a new feed link (``replace``: and revoke the earlier ones); shown once."""
    user = signed_in(request, Resource.AGREEMENTS)
    if not isinstance(user, User):
        return user
    form = await read_form(request)
    svc = services(request)
    found = agreement_of(svc, agreement)
    address = client_address(request)
    if not may_issue(user, found):
        record_refusal(
            svc.db,
            svc.clock,
            str(user.role),
            found.org_id,
            f"POST /agreements/{found.org_id}/ical (user {user.name}) [refused] from {address}",
            NotAuthorised(f"{user.role}: only admin or the organisation may issue its feed"),
        )
        return render(request, "error.html.j2", user, 403, message="forbidden")
    replace = text(form, "replace") == "yes"
    issued = await run_in_threadpool(
        issue_feed, svc.db, svc.wall, found.org_id, found.cycle_id, replace=replace
    )
    record_event(
        svc.db,
        svc.clock,
        actor=str(user.role),
        action=f"ical issue (user {user.name}) {found.org_id}",
        outcome="ok",
        reason="feed link issued" + (", earlier links revoked" if replace else ""),
        address=address,
    )
    url = feed_url(issued.path, public_base(request))
    return render(
        request,
        "ical_issued.html.j2",
        user,
        found=found,
        feed_url=url,
        webcal_url="webcal://" + url.split("://", 1)[-1],
        replaced=replace,
    )
