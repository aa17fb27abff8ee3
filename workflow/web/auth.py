"""Who is asking: Bearer tokens for the API, a server-side session for the dashboard.

Every refusal (an unknown or revoked token, a resource the role may not read at all, a single
row it may not read) is written to the security log with
:func:`workflow.store.security.record_refusal`; a request with no token at all is simply told to
authenticate (nothing to record about nobody). What a role may read is decided in one place,
:mod:`workflow.rules.access`; this module only turns its answers into 403 and 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from notifications.mailers import Mailer
from workflow.rules.access import Resource, may_read, readers
from workflow.rules.clock import Clock, SystemClock
from workflow.rules.errors import NotAuthorised
from workflow.store.database import Database
from workflow.store.security import record_refusal
from workflow.store.users import User, authenticate, token_prefix
from workflow.web.problems import NotFound, Problem

COOKIE = "rubrong_token"  # the old cookie that held a raw token: now only ever deleted
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A token from `rubrong user add NAME --role ROLE`.",
)


@dataclass(frozen=True)
class Services:
    """What the web layer needs: the database, the clock, a mailer for sign-in links, and
    the wall clock that sessions and sign-in links expire by (``clock`` may be virtual)."""

    db: Database
    clock: Clock
    mailer: Mailer | None = None
    wall: Clock = field(default_factory=SystemClock)


def services(request: Request) -> Services:
    """The app's services (set by ``create_app``)."""
    found: Services = request.app.state.services
    return found


def request_action(request: Request) -> str:
    """The request as the security log names it: ``METHOD /path``."""
    return f"{request.method} {request.url.path}"


def check_token(svc: Services, token: str, action: str) -> User | None:
    """The user holding ``token``; a failed attempt is logged as a refusal."""
    user = authenticate(svc.db, token, svc.clock)
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
    user = check_token(services(request), credentials.credentials, request_action(request))
    if user is None:
        raise Problem(401, "the token is unknown or revoked")
    return user


def reader(resource: Resource) -> Callable[..., User]:
    """A dependency: the API caller, 403 (logged) unless its role may read ``resource``."""

    def dependency(request: Request, user: User = Depends(api_user)) -> User:
        check_read(services(request), user, resource, request_action(request))
        return user

    return dependency


def check_read(svc: Services, user: User, resource: Resource, action: str) -> None:
    """403 (logged) unless ``user``'s role may read ``resource`` at all."""
    if not may_read(user.role, resource):
        who = " or ".join(readers(resource))
        refuse(svc, user, None, action, f"only {who} may read {resource.value.replace('_', ' ')}")


def admin_user(request: Request, user: User = Depends(api_user)) -> User:
    """An ``admin`` caller: 403 (logged) for anyone else."""
    if not user.is_admin:
        refuse(services(request), user, None, request_action(request), "only admin may read this")
    return user


def _record(svc: Services, user: User, agreement: str | None, action: str, reason: str) -> None:
    error = NotAuthorised(f"{user.role}: {reason}")
    record_refusal(
        svc.db, svc.clock, str(user.role), agreement, f"{action} (user {user.name})", error
    )


def refuse(svc: Services, user: User, agreement: str | None, action: str, reason: str) -> NoReturn:
    """Log an authorisation failure and raise it (403)."""
    _record(svc, user, agreement, action, reason)
    raise NotAuthorised(f"{user.role}: {reason}")


def hide(
    svc: Services, user: User, agreement: str | None, action: str, reason: str, answer: str
) -> NoReturn:
    """Log a refused read of a single row and answer 404 ``answer`` (as for an unknown row)."""
    _record(svc, user, agreement, action, reason)
    raise NotFound(answer)


def cookie_user(request: Request) -> User | None:
    """The dashboard's signed-in person (None when not signed in or no longer valid)."""
    from workflow.web.session import session_user  # session imports this module

    return session_user(request)
