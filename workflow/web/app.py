"""``create_app(db_url, clock)``: the FastAPI application ``rubrong run --web`` serves.

The body limit wraps everything (so a large body is refused before authentication); errors are
``application/problem+json`` everywhere under ``/api``; the OpenAPI document is ``/openapi.json``.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import Depends, FastAPI

from notifications.mailers import Mailer, mailer_from_url
from workflow.rules.clock import Clock, SystemClock
from workflow.store.database import Database
from workflow.web import api, dashboard, forms, ical_feed, signin
from workflow.web.auth import Services
from workflow.web.limits import MAX_BODY, BodyLimit
from workflow.web.problems import install_handlers
from workflow.web.strict import install_openapi, known_query

DESCRIPTION = """\
The REST API of rubrong (CONTRACT.md "REST API").

* Authenticate with `Authorization: Bearer TOKEN` (`rubrong user add NAME --role ROLE`).
  Any valid token reads every agreement; the outbox (letters and addresses) is read in full by
  admin and auditors and by a province, group or agency for its own organisation only (others'
  rows are absent from lists; a single foreign row is 404); users and the security log are
  admin-only.
* Errors are `application/problem+json` (`type`, `title`, `status`, `detail`):
  401 no, unknown or revoked token · 403 not authorised (also a non-admin setting `at`) ·
  404 unknown agreement or cycle · 409 not allowed now, or lost a race (nothing written) ·
  413 body over 1,048,576 bytes (decided before authentication) ·
  415 an event body that is not `application/json` (or `multipart/form-data`) ·
  422 unknown event, bad data, invalid JSON or UTF-8.
* `GET /api/v1/verify` answers 200 either way: `ok: false` names `first_bad_seq`.
"""


def create_app(
    db_url: str, clock: Clock, mailer: Mailer | None = None, wall: Clock | None = None
) -> FastAPI:
    """The web application over the database at ``db_url``, telling time with ``clock``.

    ``mailer`` sends sign-in links (default: ``RUBRONG_SMTP_URL`` when set, else none);
    ``wall`` is the clock sessions and sign-in links expire by (default: the system clock).
    """
    if mailer is None and os.environ.get("RUBRONG_SMTP_URL"):
        mailer = mailer_from_url(os.environ["RUBRONG_SMTP_URL"], maildir=Path("mail"))
    db = Database(db_url, pooled=True)
    db.create_schema()
    app = FastAPI(
        title="rubrong",
        version="1",
        description=DESCRIPTION,
        docs_url=None,  # Swagger UI would load its scripts from a CDN; /openapi.json is enough
        redoc_url=None,
    )
    app.state.services = Services(db=db, clock=clock, mailer=mailer, wall=wall or SystemClock())
    install_handlers(app)
    app.include_router(api.router, dependencies=[Depends(known_query)])
    app.include_router(signin.router)  # before the dashboard: it owns /signin and /signout
    app.include_router(forms.api_router, dependencies=[Depends(known_query)])  # e-SAR drafts
    app.include_router(forms.router)  # forms that fire events (workflow.web.forms)
    app.include_router(ical_feed.router)  # /ical/SECRET/ORG.ics: no session, no query check
    app.include_router(dashboard.router)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    install_openapi(app)
    return app
