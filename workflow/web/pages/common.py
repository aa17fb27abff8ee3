"""What every page shares: the templates, the signed-in user, rendering, paging, downloads.

The user comes from :mod:`workflow.web.session` (the sign-in session). A page names the resources it
shows; a role that may not read one of them gets 403 (logged), as on the API
(:mod:`workflow.rules.access`). Flash messages travel in the query string of the redirect that
follows
an action: ``?done=EVENT`` (recorded) or ``?refused=CODE`` (a CLI exit code, explained in the
reader's language) with an optional ``&detail=…`` (the refusal's one line); base.html.j2 shows them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from workflow.resources import template_dir
from workflow.rules.access import Resource, may_read
from workflow.rules.errors import NotAuthorised
from workflow.store.users import User
from workflow.web.auth import check_read, request_action, services
from workflow.web.i18n import Words, pick_language
from workflow.web.session import clear_session_cookie, install_template_globals, session_user
from workflow.web.signin import signin_url

TEMPLATES_DIR = template_dir() / "web"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["json_text"] = lambda value: json.dumps(value, ensure_ascii=False, indent=1)
LANG_COOKIE = "rubrong_lang"
PAGE_SIZE = 50
MAX_DETAIL = 300
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
install_template_globals(templates.env)


def current_user(request: Request) -> User | None:
    """The signed-in person of this browser (:func:`workflow.web.session.session_user`)."""
    return session_user(request)


def signin_location(request: Request) -> str:
    """Where to send someone who is not signed in (back here after signing in)."""
    return signin_url(request)


def flash(request: Request, words: Words) -> dict[str, str] | None:
    """The message of the action that led here (``?done=`` / ``?refused=``), if any."""
    params = request.query_params
    detail = (params.get("detail") or "")[:MAX_DETAIL]
    if params.get("refused", "").isdigit():
        code = int(params["refused"])
        text = f"{words('refused')} ({code}): {words.exit_code(code)}"
        return {"kind": "error", "text": text, "detail": detail}
    if params.get("done"):
        return {
            "kind": "done",
            "text": f"{words('done')}: {words.event(params['done'])}",
            "detail": "",
        }
    return None


def render(
    request: Request, name: str, user: User | None, status_code: int = 200, **context: Any
) -> Response:
    """A page in the reader's language (``?lang=`` wins and is remembered in a cookie)."""
    query_lang = request.query_params.get("lang")
    lang = pick_language(query_lang, request.cookies.get(LANG_COOKIE))
    words = Words(lang)
    switch = dict(request.query_params)
    switch["lang"] = "en" if lang == "th" else "th"
    response = templates.TemplateResponse(
        request,
        name,
        {
            "t": words,
            "lang": lang,
            "user": user,
            "switch_url": f"{request.url.path}?{urlencode(switch)}",
            "flash": flash(request, words),
            **context,
        },
        status_code=status_code,
        headers=PAGE_HEADERS,
    )
    if query_lang in ("th", "en"):
        response.set_cookie(LANG_COOKIE, query_lang, max_age=365 * 86400, samesite="lax")
    return response


def signed_in(request: Request, *resources: Resource) -> User | Response:
    """The signed-in user, or the answer: to the sign-in page, or 403 (logged) for a page
    showing a resource its role may not read (:mod:`workflow.rules.access`)."""
    user = current_user(request)
    if user is None:
        response = RedirectResponse(signin_location(request), status_code=303)
        clear_session_cookie(response)
        return response
    for resource in resources:
        if not may_read(user.role, resource):
            try:
                check_read(services(request), user, resource, request_action(request))
            except NotAuthorised:
                return render(request, "error.html.j2", user, 403, message="forbidden")
    return user


def words_for(request: Request) -> Words:
    """The reader's words (for text built outside a template, such as download headers)."""
    return Words(pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))


@dataclass(frozen=True)
class Paging:
    """One page of a list: 1-based ``number`` of ``pages``, ``size`` rows a page."""

    number: int
    total: int
    size: int = PAGE_SIZE

    @classmethod
    def of(cls, page: int, total: int, size: int = PAGE_SIZE) -> Paging:
        """Page ``page`` (clamped to the pages there are) of ``total`` rows."""
        last = max(1, math.ceil(total / size))
        return cls(min(max(page, 1), last), total, size)

    @property
    def pages(self) -> int:
        """How many pages there are (at least 1)."""
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        """The first row's index."""
        return (self.number - 1) * self.size

    @property
    def first(self) -> int:
        """The first row shown, 1-based (0 when there are none)."""
        return 0 if self.total == 0 else self.offset + 1

    @property
    def last(self) -> int:
        """The last row shown, 1-based."""
        return min(self.total, self.offset + self.size)

    def rows(self, items: list[Any]) -> list[Any]:
        """This page of an in-memory list."""
        return items[self.offset : self.offset + self.size]


def page_url(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (``None`` removes one)."""
    params = dict(request.query_params)
    for key in ("done", "refused", "detail"):  # a flash is shown once
        params.pop(key, None)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return f"{request.url.path}?{query}" if query else request.url.path


def int_param(value: str, default: int = 1) -> int:
    """A page number from the query string (anything else is ``default``)."""
    return int(value) if value.isdigit() and len(value) < 9 else default
