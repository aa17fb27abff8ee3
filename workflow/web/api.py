"""The REST API (CONTRACT.md "REST API"): the CLI's read views and ``fire``, over HTTP.

What each role may read is decided by :mod:`workflow.rules.access` (every read endpoint asks it):
any
valid token reads every agreement; the outbox is read in full by admin and auditors and by a
province, group or agency for its own organisation only; users and the security log are
admin-only. Writes go
through :func:`workflow.usecases.fire.fire` with the role the token carries; only ``admin`` may set
the effective time ``at``. Nothing here decides anything the engine decides.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from sqlalchemy import Connection, select

from states.machine import EVENTS, mermaid
from workflow.rules.access import Resource, outbox_scope
from workflow.rules.errors import BadInput, quoted
from workflow.rules.jsoninput import parse_json_bytes
from workflow.rules.timeutil import TimeFormatError, format_instant, parse_instant
from workflow.store.documents import MEDIA_TYPES as MEDIA
from workflow.store.documents import default_store, max_document_bytes
from workflow.store.history import verify
from workflow.store.repository import Agreement, get_agreement, get_cycle, latest_cycle_id
from workflow.store.security import SECURITY_LOG
from workflow.store.users import User, user_rows
from workflow.store.views import (
    agreement_status,
    history_rows,
    milestone_rows,
    outbox_rows,
    status_rows,
)
from workflow.usecases.esar import Upload, with_document
from workflow.usecases.fire import FireRequest, fire
from workflow.usecases.report import report_rows
from workflow.usecases.score import agreement_score
from workflow.web import schemas, uploads
from workflow.web.auth import Services, api_user, hide, reader, refuse, request_action, services
from workflow.web.content import event_body_kind
from workflow.web.problems import NotFound

router = APIRouter(prefix="/api/v1", tags=["api"])
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_OUTBOX_KEY = re.compile(r"^[A-Za-z0-9_.:+@-]{1,100}(?:/[A-Za-z0-9_.:+@-]{1,100}){0,9}$")
PUBLIC = Depends(reader(Resource.AGREEMENTS))
MILESTONES = Depends(reader(Resource.MILESTONES))
HISTORY = Depends(reader(Resource.HISTORY))
SCORES = Depends(reader(Resource.SCORES))
MACHINE = Depends(reader(Resource.MACHINE))
CycleQuery = Query(None, description="cycle id (default: the latest loaded)")
AsOfQuery = Query(None, description="ISO 8601: keep entries recorded by then")


def ident(value: str | None, what: str) -> str | None:
    """An id from the URL, or 404 when it cannot be one (so junk never reaches the DB)."""
    if value is not None and not _IDENT.fullmatch(value):
        raise NotFound(f"unknown {what} {quoted(value)}")
    return value


def instant(value: str | None, name: str) -> int | None:
    """An ISO 8601 parameter as an instant; 422 when malformed."""
    if value is None:
        return None
    try:
        return parse_instant(value)
    except (TimeFormatError, ValueError, OverflowError) as exc:
        raise BadInput(f"{name}: {exc}") from exc


def find_agreement(conn: Connection, cycle: str | None, org_id: str) -> Agreement:
    """The agreement, or 404 (unknown agreement, unknown cycle, or no cycle loaded)."""
    ident(cycle, "cycle")
    ident(org_id, "agreement")
    try:
        stored = get_cycle(conn, cycle)
        return get_agreement(conn, stored.id, org_id)
    except BadInput as exc:
        raise NotFound(exc.message) from exc


def _no_cycle(conn: Connection, cycle: str | None) -> bool:
    """True when nothing is loaded yet (lists are then empty); 404 for an unknown cycle."""
    if cycle is None:
        return latest_cycle_id(conn) is None
    ident(cycle, "cycle")
    try:
        get_cycle(conn, cycle)
    except BadInput as exc:
        raise NotFound(exc.message) from exc
    return False


@router.get("/agreements", responses=schemas.ok(schemas.AGREEMENT, 404, many=True))
def list_agreements(request: Request, _user: User = PUBLIC, cycle: str | None = CycleQuery) -> Any:
    """Every agreement as ``status --json`` prints it."""
    with services(request).db.read() as conn:
        return [] if _no_cycle(conn, cycle) else status_rows(conn, cycle, None)


@router.get("/agreements/{agreement}", responses=schemas.ok(schemas.AGREEMENT, 404))
def one_agreement(
    request: Request,
    agreement: str,
    _user: User = PUBLIC,
    cycle: str | None = CycleQuery,
) -> Any:
    """One agreement as ``status AGREEMENT --json`` prints it."""
    with services(request).db.read() as conn:
        return agreement_status(conn, find_agreement(conn, cycle, agreement))


@router.get(
    "/agreements/{agreement}/milestones",
    responses=schemas.ok(schemas.MILESTONE, 404, many=True),
)
def agreement_milestones(
    request: Request,
    agreement: str,
    _user: User = MILESTONES,
    cycle: str | None = CycleQuery,
) -> Any:
    """``milestones AGREEMENT --json``."""
    with services(request).db.read() as conn:
        found = find_agreement(conn, cycle, agreement)
        return milestone_rows(conn, found.cycle_id, [found.org_id])


@router.get(
    "/agreements/{agreement}/history",
    responses=schemas.ok(schemas.HISTORY_ENTRY, 404, many=True),
)
def agreement_history(
    request: Request,
    agreement: str,
    _user: User = HISTORY,
    as_of: str | None = AsOfQuery,
    cycle: str | None = CycleQuery,
) -> Any:
    """``history AGREEMENT --as-of T --json``: a filtered view of the global chain."""
    when = instant(as_of, "as_of")
    with services(request).db.read() as conn:
        found = find_agreement(conn, cycle, agreement)
        return history_rows(conn, found.cycle_id, found.org_id, when)


@router.get("/agreements/{agreement}/score", responses=schemas.ok(schemas.SCORE, 404))
def agreement_score_card(
    request: Request,
    agreement: str,
    _user: User = SCORES,
    cycle: str | None = CycleQuery,
) -> Any:
    """``score AGREEMENT --json``."""
    with services(request).db.read() as conn:
        found = find_agreement(conn, cycle, agreement)
        return agreement_score(conn, get_cycle(conn, found.cycle_id), found)


@router.post(
    "/agreements/{agreement}/events",
    responses=schemas.ok(schemas.AGREEMENT, 403, 404, 409, 415),
    openapi_extra=uploads.event_request_schema(),  # JSON, or multipart with a document
)
async def post_event(
    request: Request, agreement: str, user: User = Depends(api_user), cycle: str | None = CycleQuery
) -> Any:
    """Fire one event as the token's role; answers the agreement row as ``status`` prints it."""
    upload = None
    if event_body_kind(request) == "multipart":  # 415 unless JSON or multipart (web.content)
        body, upload = await uploads.read_event_form(request, max_document_bytes())
    else:
        body = await request.body()
    event, data, at = parse_event_body(body)
    return await run_in_threadpool(
        _fire, services(request), user, agreement, cycle, event, data, at, upload
    )


def _fire(
    svc: Services,
    user: User,
    agreement: str,
    cycle: str | None,
    event: str,
    data: dict[str, Any] | None,
    at: str | None,
    upload: Upload | None = None,
) -> dict[str, Any]:
    if event not in EVENTS:
        raise BadInput(f"unknown event {quoted(event)} (events: {', '.join(EVENTS)})")
    effective = instant(at, "at")
    with svc.db.read() as conn:
        found = find_agreement(conn, cycle, agreement)
    if effective is not None and not user.is_admin:
        refuse(svc, user, found.org_id, f"fire {event}", "only admin may set the effective time")
    # A document (uploaded, or a stored one's sha256) is checked and stored at the data step.
    store = default_store(svc.db.url)
    referable = uploads.own_documents(svc, data, found.org_id)
    data = with_document(
        event, data, store, max_document_bytes(), upload=upload, referable=referable
    )
    request = FireRequest(found.org_id, event, str(user.role), effective, data, found.cycle_id)
    result = fire(svc.db, svc.clock, request)
    with svc.db.read() as conn:
        return agreement_status(conn, result)


def parse_event_body(body: bytes) -> tuple[str, dict[str, Any] | None, str | None]:
    """``{"event", "data"?, "at"?}`` from raw bytes; 422 for anything else."""
    value = parse_json_bytes(body, "the body")
    if not isinstance(value, dict):
        raise BadInput('the body must be a JSON object {"event", "data"?, "at"?}')
    if unknown := sorted(set(value) - {"event", "data", "at"}):
        names = ", ".join(quoted(key) for key in unknown[:5])
        raise BadInput(f"unknown key(s) {names} (event, data, at)")
    event, data, at = value.get("event"), value.get("data"), value.get("at")
    if not isinstance(event, str):
        raise BadInput('"event" must be a string')
    if data is not None and not isinstance(data, dict):
        raise BadInput('"data" must be a JSON object')
    if at is not None and not isinstance(at, str):
        raise BadInput('"at" must be an ISO 8601 string')
    return event, data, at


@router.get(
    "/documents/{sha256}",
    response_class=Response,
    responses={
        **schemas.ok({"type": "string", "format": "binary"}, 403, 404),
        200: {"content": {t: {"schema": {"type": "string", "format": "binary"}} for t in MEDIA}},
    },
)
def document(request: Request, sha256: str, user: User = Depends(api_user)) -> Response:
    """A document sent with an e-SAR Card (admin, auditor, evaluator, or its own party)."""
    return uploads.download(services(request), user, sha256, request_action(request))


@router.get("/history", responses=schemas.ok(schemas.HISTORY_ENTRY, 404, many=True))
def all_history(
    request: Request,
    _user: User = HISTORY,
    as_of: str | None = AsOfQuery,
    cycle: str | None = CycleQuery,
) -> Any:
    """``history --as-of T --json``: the whole chain (optionally one cycle's entries)."""
    when = instant(as_of, "as_of")
    with services(request).db.read() as conn:
        return history_rows(conn, ident(cycle, "cycle"), None, when)


@router.get("/outbox", responses=schemas.ok(schemas.OUTBOX_ROW, many=True))
def outbox(request: Request, user: User = Depends(api_user)) -> Any:
    """``outbox --json``, only the rows the caller may read; others' rows are simply absent."""
    with services(request).db.read() as conn:
        return outbox_rows(conn, scope=outbox_scope(user.role))


@router.get("/outbox/{key:path}", responses=schemas.ok(schemas.OUTBOX_ROW, 404))
def outbox_row(request: Request, key: str, user: User = Depends(api_user)) -> Any:
    """One outbox row by key; 404 when unknown or not the caller's to read (that one logged)."""
    svc = services(request)
    answer = f"unknown outbox row {quoted(key)}"
    if not _OUTBOX_KEY.fullmatch(key):
        raise NotFound(answer)
    with svc.db.read() as conn:
        rows = outbox_rows(conn, scope=outbox_scope(user.role), key=key)
        hidden = [] if rows else outbox_rows(conn, key=key)
    if hidden:
        reason = "may not read another organisation's letters"
        hide(svc, user, hidden[0]["agreement"], request_action(request), reason, answer)
    if not rows:
        raise NotFound(answer)
    return rows[0]


@router.get("/verify", responses=schemas.ok(schemas.VERIFY))
def verify_chain(
    request: Request,
    _user: User = HISTORY,
    head: str | None = Query(None, description="the hash the chain must end at"),
) -> Any:
    """Recompute the chain. 200 either way; ``ok: false`` names ``first_bad_seq``."""
    with services(request).db.read() as conn:
        return verify(conn, head).as_json()


@router.get("/report", responses=schemas.ok({"type": "object"}, 404, many=True))
def report(request: Request, _user: User = SCORES, cycle: str | None = CycleQuery) -> Any:
    """``report --json``: every agreement ranked by final score."""
    with services(request).db.read() as conn:
        return [] if _no_cycle(conn, cycle) else report_rows(conn, cycle)


@router.get(
    "/diagram",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def diagram(_user: User = MACHINE) -> str:
    """The declared machine as a mermaid ``stateDiagram-v2``."""
    return mermaid()


@router.get("/me", responses=schemas.ok({"type": "object", "required": ["name", "role"]}))
def me(user: User = Depends(api_user)) -> Any:
    """The caller's user name and role."""
    return {"name": user.name, "role": str(user.role)}


@router.get("/users", responses=schemas.ok(schemas.USER, 403, many=True))
def users(request: Request, _admin: User = Depends(reader(Resource.USERS))) -> Any:
    """Every API user (admin only); never a token or its hash."""
    with services(request).db.read() as conn:
        return user_rows(conn)


@router.get("/security-log", responses=schemas.ok(schemas.SECURITY_ENTRY, 403, many=True))
def security_log(
    request: Request,
    _admin: User = Depends(reader(Resource.SECURITY_LOG)),
    limit: int = Query(1000, ge=1, le=100_000, description="most recent entries"),
) -> Any:
    """Refused attempts, newest first (admin only)."""
    query = select(SECURITY_LOG).order_by(SECURITY_LOG.c.id.desc()).limit(limit)
    with services(request).db.read() as conn:
        return [
            {
                "id": row.id,
                "at": format_instant(row.at),
                "actor": row.actor,
                "agreement": row.agreement,
                "action": row.action,
                "reason": row.reason,
            }
            for row in conn.execute(query)
        ]
