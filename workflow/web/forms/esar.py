"""The e-SAR Card form: one row per KPI, saved as a draft any number of times, then submitted.

``/agreements/{id}/esar/{round}`` (round ``sar6``, ``esar9`` or ``sar12``): the own party fills
in, per KPI of the agreement's current KPI version, the result to date, the self-assessed
level, a progress note and an evidence reference, and may attach a document (PDF, DOCX or XLSX,
judged by content, at most the size limit of :mod:`workflow.store.documents`). "Save draft" stores
it
(:mod:`workflow.usecases.esar_drafts`); "Submit" fires ``submit_sar6`` / ``submit_esar9`` /
``submit_sar12`` with the card as data and the document through
:func:`workflow.usecases.esar.with_document`
(the API's path), so its hash lands in the history entry. Problems are shown next to each
field, in Thai and English, with what was typed kept. OPDC roles and auditors read the card;
another organisation gets 404 (logged).

``/esar/{round}``: every organisation's card of a round side by side (one row per agreement,
one column per KPI id present; submitted cards, else drafts marked as such), paged.
``/agreements/{id}/documents/{sha256}``: a document of this agreement (its history or drafts).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from workflow.rules.access import Resource
from workflow.rules.errors import BadInput, RubrongError
from workflow.store.documents import (
    DocumentTooLarge,
    accept,
    default_store,
    is_sha256,
    max_document_bytes,
    safe_name,
)
from workflow.store.repository import Agreement, get_cycle, list_agreements
from workflow.store.users import User
from workflow.usecases.esar import Upload, with_document
from workflow.usecases.esar_drafts import (
    CardInvalid,
    Draft,
    check_round,
    drafts_of,
    field_errors,
    kpi_ids,
    load_draft,
    mark_submitted,
    save_draft,
    submitted_cards,
)
from workflow.web import uploads
from workflow.web.auth import Services, refuse, request_action, services
from workflow.web.forms.common import (
    Outcome,
    agreement_of,
    allowed_now,
    fire_as,
    number_or_text,
    own_or_reader,
    read_form,
    refused,
    text,
)
from workflow.web.pages.common import Paging, int_param, page_url, render, signed_in
from workflow.web.problems import NotFound

router = APIRouter(include_in_schema=False)
ROW_FIELDS = ("result", "level", "note", "evidence")


def _round_or_404(round_id: str) -> str:
    try:
        return check_round(round_id)
    except BadInput as exc:
        raise NotFound(exc.message) from exc


def card_from_form(
    form: FormData, agreement: Agreement
) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """The card the form describes (rows left wholly empty are left out) and what was typed,
    by KPI id. Numbers become JSON numbers; anything else stays as typed for the checks."""
    card: list[dict[str, Any]] = []
    typed: dict[str, dict[str, str]] = {}
    for kpi in kpi_ids(agreement):
        values = {name: text(form, f"{name}-{kpi}") for name in ROW_FIELDS}
        typed[kpi] = values
        if not any(values.values()):
            continue
        row: dict[str, Any] = {"kpi": kpi}
        if values["result"]:
            row["result"] = number_or_text(values["result"])
        if values["level"]:
            row["level"] = number_or_text(values["level"])
        if values["note"]:
            row["note"] = values["note"]
        if values["evidence"]:
            row["evidence"] = values["evidence"]
        card.append(row)
    return card, typed


def typed_from_card(card: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """What a saved card shows in the form's fields, by KPI id."""
    typed: dict[str, dict[str, str]] = {}
    for row in card:
        if isinstance(row, dict) and isinstance(row.get("kpi"), str):
            typed[row["kpi"]] = {
                name: "" if row.get(name) is None else str(row[name]) for name in ROW_FIELDS
            }
    return typed


def errors_by_kpi(errors: dict[str, str], card: list[dict[str, Any]]) -> dict[str, str]:
    """``card[i].field`` → ``field-KPI`` (the form's field names); the rest unchanged."""
    shown: dict[str, str] = {}
    for key, message in errors.items():
        head, _, name = key.partition(".")
        if head.startswith("card[") and head.endswith("]"):
            index = int(head[5:-1])
            kpi = card[index].get("kpi") if index < len(card) else None
            if isinstance(kpi, str):
                shown.setdefault(f"{name or 'result'}-{kpi}", message)
                continue
        shown.setdefault(key, message)
    return shown


async def _upload(form: FormData, limit: int) -> Upload | None:
    """The attached file, if any; exit 2 for a name with a directory part, 413 when too big."""
    files = [value for value in form.getlist("document") if isinstance(value, UploadFile)]
    files = [file for file in files if file.filename]
    if not files:
        return None
    file = files[0]
    name = file.filename or ""
    if safe_name(name, "pdf") != name or name.startswith("."):
        raise BadInput(
            f"document: the file name {name[:80]!r} must be a plain file name, without a "
            "directory part (ชื่อไฟล์ต้องไม่มีส่วนของโฟลเดอร์)"
        )
    content = await file.read(limit + 1)
    if len(content) > limit:
        raise DocumentTooLarge(
            f"document: the file is over the {limit}-byte limit (ไฟล์มีขนาดเกินกำหนด)"
        )
    return Upload(name, content)


def _context(
    svc: Services, user: User, found: Agreement, round_id: str, own: bool
) -> dict[str, Any]:
    with svc.db.read() as conn:
        draft = load_draft(conn, found.pk, round_id)
        submitted = submitted_cards(conn, found.cycle_id, round_id).get(found.org_id)
    event = check_round(round_id)
    return {
        "row": found,
        "round": round_id,
        "event": event,
        "draft": draft,
        "submitted": submitted,
        "own": own,
        "can_submit": own and event in allowed_now(svc, user, found),
        "limit": max_document_bytes(),
        "typed": typed_from_card(draft.card if draft else (submitted or {}).get("card") or []),
    }


@router.get("/agreements/{agreement}/esar/{round_id}")
def card_page(request: Request, agreement: str, round_id: str) -> Response:
    """The card of one round: the form for the own party, read-only for OPDC and auditors."""
    user = signed_in(request, Resource.AGREEMENTS)
    if not isinstance(user, User):
        return user
    _round_or_404(round_id)
    svc = services(request)
    found = agreement_of(svc, agreement)
    own = own_or_reader(svc, request, user, found)
    context = _context(svc, user, found, round_id, own)
    saved = request.query_params.get("saved") == "1"
    return render(request, "esar_card.html.j2", user, outcome=Outcome(), saved=saved, **context)


@router.post("/agreements/{agreement}/esar/{round_id}")
async def card_post(request: Request, agreement: str, round_id: str) -> Response:
    """Save the draft, or submit the card (``action`` = ``save`` | ``submit``)."""
    user = signed_in(request, Resource.AGREEMENTS)
    if not isinstance(user, User):
        return user
    event = _round_or_404(round_id)
    svc = services(request)
    found = agreement_of(svc, agreement)
    form = await read_form(request, max_files=1)
    if not own_or_reader(svc, request, user, found):
        refuse(
            svc, user, found.org_id, request_action(request), "only its own party fills in a card"
        )
    card, typed = card_from_form(form, found)
    submit = text(form, "action") == "submit"
    try:
        upload = await _upload(form, max_document_bytes())
        if submit:
            await _submit(svc, user, found, round_id, event, card, upload)
            return RedirectResponse(f"/agreements/{found.org_id}?done={event}", status_code=303)
        await run_in_threadpool(_save, svc, user, found, round_id, card, upload)
        url = f"/agreements/{found.org_id}/esar/{round_id}?saved=1"
        return RedirectResponse(url, status_code=303)
    except RubrongError as error:
        outcome = refused(error, _errors(error, card, found, submit))
    context = _context(svc, user, found, round_id, True)
    context["typed"] = typed
    return render(
        request,
        "esar_card.html.j2",
        user,
        status_code=outcome.status,
        outcome=outcome,
        saved=False,
        **context,
    )


def _errors(
    error: RubrongError, card: list[dict[str, Any]], found: Agreement, submit: bool
) -> dict[str, str]:
    """The refusal's problems by form field (all of the card's, from the engine's checks)."""
    if isinstance(error, CardInvalid):
        return errors_by_kpi(error.errors, card)
    if not isinstance(error, BadInput):
        return {}
    if error.message.startswith(
        ("document", "submit_sar6: document", "submit_esar9: document", "submit_sar12: document")
    ):
        return {"document": error.message}
    return errors_by_kpi(field_errors(card, kpi_ids(found), draft=not submit), card)


def _save(
    svc: Services,
    user: User,
    found: Agreement,
    round_id: str,
    card: list[dict[str, Any]],
    upload: Upload | None,
) -> Draft:
    errors = field_errors(card, kpi_ids(found), draft=True)
    if errors:
        raise CardInvalid(errors)
    document = None
    if upload is not None:
        store = default_store(svc.db.url)
        info = accept(store, upload.content, upload.name, max_document_bytes(), "document")
        document = info.as_json()
    with svc.db.write() as conn:
        return save_draft(conn, found, round_id, card, document, str(user.role), svc.clock.now())


async def _submit(
    svc: Services,
    user: User,
    found: Agreement,
    round_id: str,
    event: str,
    card: list[dict[str, Any]],
    upload: Upload | None,
) -> None:
    with svc.db.read() as conn:
        draft = load_draft(conn, found.pk, round_id)
    data: dict[str, Any] = {"card": card}
    referable: set[str] = set()
    if upload is None and draft is not None and draft.document is not None:
        data["document"] = {"sha256": draft.document["sha256"], "name": draft.document["name"]}
        referable.add(draft.document["sha256"])
    store = default_store(svc.db.url)
    prepared = with_document(
        event, data, store, max_document_bytes(), upload=upload, referable=referable
    )
    await fire_as(svc, user, found, event, prepared)
    with svc.db.write() as conn:
        mark_submitted(conn, found, round_id, str(user.role))


@router.get("/esar/{round_id}")
def all_cards(request: Request, round_id: str, page: str = "1") -> Response:
    """Every organisation's card of a round side by side (OPDC roles and auditors)."""
    user = signed_in(request, Resource.AGREEMENTS, Resource.ESAR_DRAFTS)
    if not isinstance(user, User):
        return user
    _round_or_404(round_id)
    svc = services(request)
    if user.role.org is not None:  # a party reads only its own card
        refuse(
            svc, user, None, request_action(request), "only OPDC roles and auditors see every card"
        )
    with svc.db.read() as conn:
        cycle = get_cycle(conn, None)
        agreements = list_agreements(conn, cycle.id, None)
        submitted = submitted_cards(conn, cycle.id, round_id)
        drafts = drafts_of(conn, [a.pk for a in agreements], round_id)
    rows = []
    columns: list[str] = []
    for found in agreements:
        data = submitted.get(found.org_id)
        draft = drafts.get(found.pk)
        card = (data or {}).get("card") if data else (draft.card if draft else None)
        cells = {}
        for item in card or []:
            if isinstance(item, dict) and isinstance(item.get("kpi"), str):
                cells[item["kpi"]] = item
                if item["kpi"] not in columns:
                    columns.append(item["kpi"])
        rows.append({"agreement": found, "cells": cells, "submitted": data, "draft": draft})
    columns.sort(key=lambda kpi: [int(p) if p.isdigit() else p for p in kpi.split(".")])
    paging = Paging.of(int_param(page), len(rows))
    return render(
        request,
        "esar_all.html.j2",
        user,
        round=round_id,
        rows=paging.rows(rows),
        columns=columns,
        paging=paging,
        prev_url=page_url(request, page=paging.number - 1),
        next_url=page_url(request, page=paging.number + 1),
    )


@router.get("/agreements/{agreement}/documents/{sha256}")
def agreement_document(request: Request, agreement: str, sha256: str) -> Response:
    """A document of this agreement (submitted or in a draft): OPDC roles, auditors, its own
    party; anyone else 404 (logged)."""
    user = signed_in(request, Resource.AGREEMENTS)
    if not isinstance(user, User):
        return user
    svc = services(request)
    found = agreement_of(svc, agreement)
    own_or_reader(svc, request, user, found)
    unknown = f"unknown document {sha256[:80]!r}"
    if not is_sha256(sha256):
        raise NotFound(unknown)
    with svc.db.read() as conn:
        record = uploads.referencing_record(conn, sha256, found.org_id)
        if record is None:
            for round_id in ("sar6", "esar9", "sar12"):
                draft = load_draft(conn, found.pk, round_id)
                if draft is not None and draft.document and draft.document["sha256"] == sha256:
                    record = draft.document
    store = default_store(svc.db.url)
    if record is None or not store.exists(sha256):
        raise NotFound(unknown)
    return uploads.attachment(store.get(sha256), sha256, record)
