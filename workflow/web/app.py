"""``create_app(db_url, clock)``: the FastAPI application ``rubrong run --web`` serves.

The body limit wraps everything (so a large body is refused before authentication); errors are
``application/problem+json`` everywhere under ``/api``; the OpenAPI document is ``/openapi.json``.
"""

from __future__ import annotations

from fastapi import FastAPI

from workflow.clock import Clock
from workflow.store import Database
from workflow.web import api, dashboard
from workflow.web.auth import Services
from workflow.web.limits import MAX_BODY, BodyLimit
from workflow.web.problems import install_handlers

DESCRIPTION = """\
The REST API of rubrong (CONTRACT.md "REST API").

* Authenticate with `Authorization: Bearer TOKEN` (`rubrong user add NAME --role ROLE`).
  Any valid token reads every agreement; users and the security log are admin-only.
* Errors are `application/problem+json` (`type`, `title`, `status`, `detail`):
  401 no, unknown or revoked token · 403 not authorised (also a non-admin setting `at`) ·
  404 unknown agreement or cycle · 409 not allowed now, or lost a race (nothing written) ·
  413 body over 1,048,576 bytes (decided before authentication) ·
  422 unknown event, bad data, invalid JSON or UTF-8.
* `GET /api/v1/verify` answers 200 either way: `ok: false` names `first_bad_seq`.
"""


def create_app(db_url: str, clock: Clock) -> FastAPI:
    """The web application over the database at ``db_url``, telling time with ``clock``."""
    db = Database(db_url, pooled=True)
    db.create_schema()
    app = FastAPI(
        title="rubrong",
        version="1",
        description=DESCRIPTION,
        docs_url=None,  # Swagger UI would load its scripts from a CDN; /openapi.json is enough
        redoc_url=None,
    )
    app.state.services = Services(db=db, clock=clock)
    install_handlers(app)
    app.include_router(api.router)
    app.include_router(dashboard.router)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    return app
