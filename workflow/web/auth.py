"""Who is asking: Bearer tokens for the API, a cookie for the dashboard.

Every refusal (an unknown or revoked token, a non-admin asking for admin pages) is written to
the security log with :func:`workflow.security.record_refusal`; a request with no token at all
is simply told to authenticate (nothing to record about nobody).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from workflow.clock import Clock
from workflow.errors import NotAuthorised
from workflow.security import record_refusal
from workflow.store import Database
from workflow.users import User, authenticate, token_prefix
from workflow.web.problems import Problem

COOKIE = "rubrong_token"
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A token from `rubrong user add NAME --role ROLE`.",
)


@dataclass(frozen=True)
class Services:
    """What the web layer needs: the database and the clock."""

    db: Database
    clock: Clock


def services(request: Request) -> Services:
    """The app's services (set by ``create_app``)."""
    found: Services = request.app.state.services
    return found


def _action(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def check_token(svc: Services, token: str, action: str) -> User | None:
    """The user holding ``token``; a failed attempt is logged as a refusal."""
    user = authenticate(svc.db, token)
    if user is None:
        prefix = token_prefix(token)
        actor = f"token {prefix}…" if prefix else "malformed token"
        record_refusal(
            svc.db, svc.clock, actor, None, action, NotAuthorised("unknown or revoked token")
        )
    return user


def api_user(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> User:
    """The API caller: 401 without a valid, unrevoked Bearer token."""
    if credentials is None:
        raise Problem(401, "authentication required: send Authorization: Bearer TOKEN")
    user = check_token(services(request), credentials.credentials, _action(request))
    if user is None:
        raise Problem(401, "the token is unknown or revoked")
    return user


def admin_user(request: Request, user: User = Depends(api_user)) -> User:
    """An ``admin`` caller: 403 (logged) for anyone else."""
    if not user.is_admin:
        refuse(services(request), user, None, _action(request), "only admin may read this")
    return user


def refuse(svc: Services, user: User, agreement: str | None, action: str, reason: str) -> None:
    """Log an authorisation failure and raise it (403)."""
    error = NotAuthorised(f"{user.role}: {reason}")
    record_refusal(
        svc.db, svc.clock, str(user.role), agreement, f"{action} (user {user.name})", error
    )
    raise error


def cookie_user(request: Request) -> User | None:
    """The dashboard's signed-in user, from the cookie (None when absent or no longer valid)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return check_token(services(request), token, _action(request))
