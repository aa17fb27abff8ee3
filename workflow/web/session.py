"""Server-side sessions of people signed in to the dashboard, and CSRF protection.

The cookie ``rubrong_session`` holds a random id (256 bits); the database keeps only its
SHA-256 (``sessions.id_hash``), so a copy of the database opens no browser. A session ends at
its absolute expiry (``RUBRONG_SESSION_HOURS``, default 12), after ``RUBRONG_SESSION_IDLE_MINUTES``
(default 120) without a request, when it is signed out (here or everywhere), and when its account
is revoked. Sessions run on the wall clock (``Services.wall``), not the service's clock, which may
be virtual. ``last_seen_at`` is written at most once a minute.

Every form that changes something carries the session's synchronizer token
(``{{ csrf_input() }}``, checked by :func:`check_csrf`). Before sign-in there is no session:
the sign-in forms use a double-submit cookie (``rubrong_presession``) instead.

The cookie is HttpOnly, SameSite=Lax, and Secure when the request came over HTTPS or
``RUBRONG_PUBLIC_URL`` starts with ``https``. Signing in always starts a new id (an id the
browser brought is ended, never adopted: no session fixation).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass

import jinja2
from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup, escape
from sqlalchemy import insert, select, update

from workflow.rules.errors import NotAuthorised
from workflow.store.security import record_refusal
from workflow.store.tables import SessionRow, UserRow
from workflow.store.tokens import User, user_from_row
from workflow.web.auth import Services, request_action, services
from workflow.web.problems import Problem

SESSION_COOKIE = "rubrong_session"
PRESESSION_COOKIE = "rubrong_presession"
CSRF_FIELD = "csrf_token"
PUBLIC_URL_ENV = "RUBRONG_PUBLIC_URL"
LIFETIME_ENV = "RUBRONG_SESSION_HOURS"
IDLE_ENV = "RUBRONG_SESSION_IDLE_MINUTES"
TOUCH_EVERY = 60  # seconds between writes of last_seen_at
SESSIONS = SessionRow.__table__  # type: ignore[attr-defined]
USERS = UserRow.__table__  # type: ignore[attr-defined]
_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)
_STATE = "rubrong_session"
_NEW_PRESESSION = "rubrong_new_presession"
_UNKNOWN = object()


@dataclass(frozen=True)
class ActiveSession:
    """A live session: whose it is, its CSRF token, and its id's hash."""

    id_hash: str
    user: User
    csrf: str
    expires_at: int


class CsrfRefused(Problem):
    """403: a form arrived without the right CSRF token (nothing was changed)."""

    def __init__(self, detail: str) -> None:
        super().__init__(403, detail)


def _env_seconds(name: str, default: float, unit: int) -> int:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        value = default
    return max(60, int(value * unit)) if value > 0 else int(default * unit)


def lifetime() -> int:
    """Seconds a session lives at most (``RUBRONG_SESSION_HOURS``, default 12 h)."""
    return _env_seconds(LIFETIME_ENV, 12, 3600)


def idle_timeout() -> int:
    """Seconds without a request after which a session ends (default 2 h)."""
    return _env_seconds(IDLE_ENV, 120, 60)


def hash_id(secret: str) -> str:
    """The stored form of a cookie's session id (or a link token): lower-case hex SHA-256."""
    return hashlib.sha256(secret.encode("ascii", "replace")).hexdigest()


def is_https(request: Request) -> bool:
    """Whether cookies must be Secure: an HTTPS request, or an ``https`` public URL."""
    public = os.environ.get(PUBLIC_URL_ENV, "").strip().lower()
    return request.url.scheme == "https" or public.startswith("https://")


def _lookup(svc: Services, raw: str) -> ActiveSession | None:
    if not _ID.fullmatch(raw):
        return None
    digest = hash_id(raw)
    now = svc.wall.now()
    query = (
        select(
            SESSIONS.c.csrf_token,
            SESSIONS.c.last_seen_at,
            SESSIONS.c.expires_at,
            USERS.c.id,
            USERS.c.name,
            USERS.c.role,
            USERS.c.email,
            USERS.c.display_name,
        )
        .join(USERS, USERS.c.id == SESSIONS.c.user_id)
        .where(
            SESSIONS.c.id_hash == digest,
            SESSIONS.c.revoked_at.is_(None),
            SESSIONS.c.expires_at > now,
            SESSIONS.c.last_seen_at > now - idle_timeout(),
            USERS.c.revoked_at.is_(None),
        )
    )
    with svc.db.read() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    if not 0 <= now - row.last_seen_at < TOUCH_EVERY:
        with svc.db.write() as conn:
            conn.execute(
                update(SESSIONS).where(SESSIONS.c.id_hash == digest).values(last_seen_at=now)
            )
    return ActiveSession(digest, user_from_row(row), row.csrf_token, int(row.expires_at))


def current_session(request: Request) -> ActiveSession | None:
    """This browser's live session (looked up once per request), or None."""
    found: object = getattr(request.state, _STATE, _UNKNOWN)
    if found is not _UNKNOWN:
        return found if isinstance(found, ActiveSession) else None
    raw = request.cookies.get(SESSION_COOKIE)
    session = _lookup(services(request), raw) if raw else None
    setattr(request.state, _STATE, session)
    return session


def session_user(request: Request) -> User | None:
    """The signed-in person of this browser, or None (no, expired or revoked session, or a
    revoked account)."""
    session = current_session(request)
    return None if session is None else session.user


def csrf_token(request: Request) -> str:
    """The token a form of this page must carry: the session's synchronizer token, or before
    sign-in the double-submit token of the ``rubrong_presession`` cookie (made here when the
    browser has none; :func:`remember_presession` then sets the cookie)."""
    session = current_session(request)
    if session is not None:
        return session.csrf
    brought = request.cookies.get(PRESESSION_COOKIE, "")
    if _ID.fullmatch(brought):
        return brought
    made: str | None = getattr(request.state, _NEW_PRESESSION, None)
    if made is None:
        made = secrets.token_urlsafe(32)
        setattr(request.state, _NEW_PRESESSION, made)
    return made


def remember_presession(request: Request, response: Response) -> None:
    """Set the pre-session CSRF cookie when :func:`csrf_token` made one for this page."""
    made: str | None = getattr(request.state, _NEW_PRESESSION, None)
    if made is not None:
        response.set_cookie(
            PRESESSION_COOKIE,
            made,
            max_age=3600,
            httponly=True,
            samesite="lax",
            secure=is_https(request),
        )


@jinja2.pass_context
def _csrf_input(context: jinja2.runtime.Context) -> Markup:
    request: Request = context["request"]
    value = escape(csrf_token(request))
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{value}">')


def install_template_globals(env: jinja2.Environment) -> None:
    """Make ``{{ csrf_input() }}`` (the hidden CSRF field) available to the templates."""
    env.globals["csrf_input"] = _csrf_input


def check_csrf(request: Request, submitted: str | None) -> None:
    """403 (logged to the security log) unless ``submitted`` is this browser's CSRF token."""
    session = current_session(request)
    expected = session.csrf if session is not None else request.cookies.get(PRESESSION_COOKIE)
    if (
        submitted
        and expected
        and hmac.compare_digest(submitted.encode("utf-8"), expected.encode("utf-8"))
    ):
        return
    svc = services(request)
    actor = f"{session.user.role}" if session is not None else "anonymous"
    who = f" (user {session.user.name})" if session is not None else ""
    reason = "missing CSRF token" if not submitted else "wrong CSRF token"
    record_refusal(
        svc.db,
        svc.clock,
        actor,
        None,
        f"{request_action(request)}{who} [refused] from {client_address(request)}",
        NotAuthorised(reason),
    )
    raise CsrfRefused(f"{reason}: reload the page and try again")


def client_address(request: Request) -> str:
    """The client's address as the server saw it (for the security log and rate limits)."""
    return request.client.host if request.client is not None else "unknown"


def start_session(svc: Services, user: User, request: Request) -> tuple[str, str]:
    """A new session for ``user``: (cookie id, CSRF token). A session id the browser brought
    is ended, never reused (session fixation)."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = svc.wall.now()
    brought = request.cookies.get(SESSION_COOKIE)
    agent = (request.headers.get("user-agent") or "")[:300] or None
    with svc.db.write() as conn:
        if brought:
            conn.execute(
                update(SESSIONS)
                .where(SESSIONS.c.id_hash == hash_id(brought), SESSIONS.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        conn.execute(
            insert(SESSIONS).values(
                id_hash=hash_id(session_id),
                user_id=user.id,
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
                expires_at=now + lifetime(),
                revoked_at=None,
                user_agent=agent,
            )
        )
    setattr(
        request.state,
        _STATE,
        ActiveSession(hash_id(session_id), user, csrf, now + lifetime()),
    )
    return session_id, csrf


def set_session_cookie(response: Response, session_id: str, request: Request) -> None:
    """Put the session id in the HttpOnly, SameSite=Lax (Secure over HTTPS) cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=lifetime(),
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/",
    )
    response.delete_cookie(PRESESSION_COOKIE)


def end_session(svc: Services, request: Request) -> ActiveSession | None:
    """End this browser's session (sign-out); the session that was ended, if any."""
    session = current_session(request)
    if session is None:
        return None
    with svc.db.write() as conn:
        conn.execute(
            update(SESSIONS)
            .where(SESSIONS.c.id_hash == session.id_hash, SESSIONS.c.revoked_at.is_(None))
            .values(revoked_at=svc.wall.now())
        )
    setattr(request.state, _STATE, None)
    return session


def clear_session_cookie(response: Response) -> None:
    """Delete the session cookie (and the old raw-token cookie, if a browser still has one)."""
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie("rubrong_token")
