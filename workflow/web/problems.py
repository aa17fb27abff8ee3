"""Errors as RFC 9457 ``application/problem+json``, and the engine's exit codes as HTTP statuses.

| engine error (exit code) | HTTP |
|---|---|
| ``BadInput`` (2): bad data, unknown event, malformed body or time | 422 |
| ``BadInput`` (2) for an unknown agreement or cycle (raised as :class:`NotFound`) | 404 |
| ``NotAllowed`` (3): not allowed now (state or guard) | 409 |
| ``NotAuthorised`` (4) | 403 |
| ``ConcurrentChange`` (5): lost a race, nothing written | 409 |
| ``IntegrityFailure`` (6) | 409 (``GET /api/v1/verify`` itself answers 200 with ``ok: false``) |
| ``EnvironmentProblem`` (1): database unreachable | 503 |
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from workflow.rules.errors import (
    BadInput,
    ConcurrentChange,
    EnvironmentProblem,
    IntegrityFailure,
    NotAllowed,
    NotAuthorised,
    RubrongError,
)

PROBLEM_TYPE = "application/problem+json"
LOG = logging.getLogger("rubrong.web")

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not authorised",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
}
SLUGS = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid",
    500: "internal",
    503: "unavailable",
}


class Problem(Exception):
    """An HTTP error answered as ``application/problem+json``."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra


class NotFound(Problem):
    """404: an unknown agreement or cycle."""

    def __init__(self, detail: str) -> None:
        super().__init__(404, detail)


def problem_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """The problem object: ``type``, ``title``, ``status``, ``detail`` (and extras)."""
    return {
        "type": f"https://rubrong.invalid/problems/{SLUGS.get(status, str(status))}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A ``JSONResponse`` with the problem media type."""
    return JSONResponse(
        problem_body(status, detail, **extra),
        status_code=status,
        media_type=PROBLEM_TYPE,
        headers=headers,
    )


def status_for(error: RubrongError) -> int:
    """The HTTP status of an engine error (see the module table)."""
    if isinstance(error, NotAuthorised):
        return 403
    if isinstance(error, NotAllowed | ConcurrentChange | IntegrityFailure):
        return 409
    if isinstance(error, BadInput):
        return 422
    if isinstance(error, EnvironmentProblem):
        return 503
    return 500


def install_handlers(app: FastAPI) -> None:
    """Turn every error into a problem document; never a traceback to the client."""

    @app.exception_handler(Problem)
    async def on_problem(_request: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="rubrong"'} if exc.status == 401 else None
        return problem_response(exc.status, exc.detail, headers, **exc.extra)

    @app.exception_handler(RubrongError)
    async def on_rubrong(_request: Request, exc: RubrongError) -> JSONResponse:
        return problem_response(status_for(exc), exc.message, exit_code=exc.exit_code)

    @app.exception_handler(RequestValidationError)
    async def on_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        ]
        return problem_response(422, "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        return problem_response(exc.status_code, detail, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        LOG.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(500, f"internal error: {type(exc).__name__}")
