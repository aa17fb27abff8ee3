"""e-SAR Card drafts over the API: ``GET`` / ``PUT /api/v1/agreements/{agreement}/esar/{round}``.

The same draft as the web form, checked the same way (:mod:`workflow.usecases.esar_drafts`, which
uses
the engine's card checks). ``PUT`` takes ``{"card": [...]}`` and answers the stored draft; it
is the agreement's own party's to write (anyone else 403, logged); a card with problems is 422
with ``errors`` naming each field (in English and Thai); after the round was submitted, 409.
``GET`` answers the draft to its own party, OPDC staff, auditors and evaluators; another
organisation gets 404 like an unknown draft (logged), the committee 403.
Submitting is the events endpoint's ``submit_sar6`` / ``submit_esar9`` / ``submit_sar12``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from workflow.rules.access import Reach, Resource, reach
from workflow.rules.errors import BadInput
from workflow.rules.jsoninput import parse_json_bytes
from workflow.store.repository import Agreement
from workflow.store.users import User
from workflow.usecases.esar_drafts import CardInvalid, check_round, load_draft, save_draft
from workflow.web import schemas
from workflow.web.api import CycleQuery, find_agreement
from workflow.web.auth import Services, api_user, hide, refuse, request_action, services
from workflow.web.problems import NotFound, Problem

router = APIRouter(prefix="/api/v1", tags=["api"])

DRAFT: dict[str, Any] = {
    "type": "object",
    "required": ["agreement", "round", "card", "kpi_version", "stale"],
    "properties": {
        "agreement": {"type": "string"},
        "round": {"type": "string", "enum": ["sar6", "esar9", "sar12"]},
        "event": {"type": "string"},
        "card": {"type": "array", "items": {"type": "object"}},
        "kpi_version": {"type": "integer"},
        "current_kpi_version": {"type": "integer"},
        "stale": {"type": "boolean", "description": "made for an older KPI version"},
        "document": {"type": ["object", "null"]},
        "updated_at": {"type": "string"},
        "updated_by": {"type": "string"},
        "submitted_seq": {"type": ["integer", "null"]},
    },
}


def _round(round_id: str) -> None:
    try:
        check_round(round_id)
    except BadInput as exc:
        raise NotFound(exc.message) from exc


def _readable(svc: Services, user: User, found: Agreement, action: str) -> None:
    """403 for a role that reads no drafts; 404 (logged) for another organisation's."""
    found_reach = reach(user.role, Resource.ESAR_DRAFTS)
    if found_reach is Reach.NONE:
        refuse(svc, user, found.org_id, action, "may not read e-SAR Card drafts")
    if found_reach is Reach.OWN and not user.role.owns(found.org_id, found.kind):
        reason = "may not read another organisation's e-SAR Card drafts"
        hide(svc, user, found.org_id, action, reason, f"no draft for {found.org_id}")


def _get(
    svc: Services, user: User, agreement: str, round_id: str, cycle: str | None, action: str
) -> Any:
    _round(round_id)
    with svc.db.read() as conn:
        found = find_agreement(conn, cycle, agreement)
    _readable(svc, user, found, action)
    with svc.db.read() as conn:
        draft = load_draft(conn, found.pk, round_id)
    if draft is None:
        raise NotFound(f"no {round_id} draft is saved for {found.org_id}")
    return draft.as_json(found)


@router.get("/agreements/{agreement}/esar/{round_id}", responses=schemas.ok(DRAFT, 403, 404))
def get_draft(
    request: Request,
    agreement: str,
    round_id: str,
    user: User = Depends(api_user),
    cycle: str | None = CycleQuery,
) -> Any:
    """The saved e-SAR Card draft of one round."""
    return _get(services(request), user, agreement, round_id, cycle, request_action(request))


def _put(
    svc: Services,
    user: User,
    agreement: str,
    round_id: str,
    cycle: str | None,
    body: bytes,
    action: str,
) -> Any:
    _round(round_id)
    with svc.db.read() as conn:
        found = find_agreement(conn, cycle, agreement)
    if not user.role.owns(found.org_id, found.kind):
        _readable(svc, user, found, action)  # another organisation: 404 as for reading
        refuse(svc, user, found.org_id, action, "only its own party writes an e-SAR Card draft")
    value = parse_json_bytes(body, "the body")
    if not isinstance(value, dict) or set(value) - {"card"} or "card" not in value:
        raise BadInput('the body must be a JSON object {"card": [...]}')
    card = value["card"]
    if not isinstance(card, list):
        raise CardInvalid({"card": "must be an array of rows (e-SAR Card ต้องเป็นรายการตัวชี้วัด)"})
    try:
        with svc.db.write() as conn:
            draft = save_draft(conn, found, round_id, card, None, str(user.role), svc.clock.now())
    except CardInvalid as invalid:
        raise Problem(422, invalid.message, errors=invalid.errors, exit_code=2) from invalid
    return draft.as_json(found)


@router.put(
    "/agreements/{agreement}/esar/{round_id}",
    responses=schemas.ok(DRAFT, 403, 404, 409),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["card"],
                        "properties": {"card": {"type": "array", "items": {"type": "object"}}},
                    }
                }
            },
        }
    },
)
async def put_draft(
    request: Request,
    agreement: str,
    round_id: str,
    user: User = Depends(api_user),
    cycle: str | None = CycleQuery,
) -> Any:
    """Save (replace) the e-SAR Card draft of one round (its own party only)."""
    body = await request.body()
    return await run_in_threadpool(
        _put, services(request), user, agreement, round_id, cycle, body, request_action(request)
    )
