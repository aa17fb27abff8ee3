"""Documents over the API: the multipart form of an event, and downloading a document.

``POST /api/v1/agreements/{agreement}/events`` as ``multipart/form-data`` carries a part
``event`` (the same JSON object as the JSON body: ``{"event", "data"?, "at"?}``) and a file
part ``document`` (a PDF, DOCX or XLSX). The file is checked and stored at the engine's data
step, like a document named on the command line (:mod:`workflow.usecases.esar`); a file over the
size
limit is refused with 413 as soon as it is read.

``GET /api/v1/documents/{sha256}`` answers the document's bytes to OPDC staff (admin), the
auditor and the evaluator, and to an organisation whose own history entries reference it; a
committee member is refused (403), another organisation is answered 404 like an unknown hash
(and the refusal is logged).
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from sqlalchemy import Connection, select
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from workflow.rules.errors import BadInput
from workflow.rules.roles import PARTY_ROLES
from workflow.store.documents import MEDIA_TYPES, default_store, document_type, is_sha256
from workflow.store.history import HISTORY
from workflow.store.users import User
from workflow.usecases.esar import Upload
from workflow.web import schemas
from workflow.web.auth import Services, hide, refuse
from workflow.web.limits import MAX_BODY
from workflow.web.problems import NotFound, Problem

READ_ALL = ("admin", "auditor", "evaluator")
FORM_FIELDS = ("event", "document")

EVENT_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["event"],
    "properties": {
        "event": {
            "type": "string",
            "description": 'the event as JSON text: {"event", "data"?, "at"?}, as the JSON body',
        },
        "document": {
            "type": "string",
            "format": "binary",
            "description": "a PDF, DOCX or XLSX (judged by content) for submit_sar6, "
            "submit_esar9 or submit_sar12; at most RUBRONG_MAX_DOCUMENT_BYTES (20 MiB by "
            "default), else 413",
        },
    },
}


def event_request_schema() -> dict[str, Any]:
    """``openapi_extra`` of the events endpoint: the JSON body and the multipart form."""
    extra = copy.deepcopy(schemas.EVENT_REQUEST)
    extra["requestBody"]["content"]["multipart/form-data"] = {
        "schema": EVENT_FORM,
        "encoding": {"event": {"contentType": "application/json"}},
    }
    return extra


async def read_event_form(request: Request, limit: int) -> tuple[bytes, Upload | None]:
    """The ``event`` part's bytes and the uploaded ``document``; 422 for a malformed form,
    413 for a document over ``limit`` bytes."""
    try:
        form = await request.form(max_files=2, max_fields=len(FORM_FIELDS), max_part_size=MAX_BODY)
    except HTTPException as exc:  # python-multipart's complaint, raised by Starlette as 400
        raise BadInput(f"the multipart body is malformed: {exc.detail}") from exc
    try:
        if unknown := sorted(set(form.keys()) - set(FORM_FIELDS)):
            raise BadInput(
                f"unknown form part(s) {', '.join(map(repr, unknown))} (event, document)"
            )
        events = form.getlist("event")
        if len(events) != 1:
            raise BadInput('the form needs exactly one part "event" (the event as JSON)')
        part = events[0]
        body = await part.read(MAX_BODY + 1) if isinstance(part, UploadFile) else part.encode()
        documents = form.getlist("document")
        if not documents:
            return body, None
        if len(documents) > 1 or not isinstance(documents[0], UploadFile):
            raise BadInput('"document" must be one file part')
        file = documents[0]
        content = await file.read(limit + 1)
        if len(content) > limit:
            raise Problem(413, f"the document is over the {limit}-byte limit (ไฟล์มีขนาดเกินกำหนด)")
        return body, Upload(file.filename or "", content)
    finally:
        await form.close()


def download(svc: Services, user: User, sha256: str, action: str) -> Response:
    """The document stored under ``sha256``, if ``user`` may read it (module docstring)."""
    role = user.role
    if role.kind not in READ_ALL and role.kind not in PARTY_ROLES:
        refuse(svc, user, None, action, f"only {', '.join(READ_ALL)} or its own party may read it")
    store = default_store(svc.db.url)
    unknown = f"unknown document {sha256[:80]!r}"
    if not is_sha256(sha256) or not store.exists(sha256):
        raise NotFound(unknown)
    own = role.org if role.kind in PARTY_ROLES else None
    with svc.db.read() as conn:
        record = referencing_record(conn, sha256, own)
    if record is None and own is not None:
        hide(svc, user, own, action, "the document is not in its own history", unknown)
    return attachment(store.get(sha256), sha256, record)


def attachment(content: bytes, sha256: str, record: dict[str, Any] | None) -> Response:
    """A stored document as a download: its media type (judged by content when the record
    has none), its recorded name, never sniffed or cached."""
    kind = record.get("type") if record is not None else None
    if kind not in MEDIA_TYPES:
        kind = document_type(content)
    name = record.get("name") if record is not None else None
    if not isinstance(name, str) or not name:
        name = f"{sha256}.{kind}"
    fallback = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in name
    )
    return Response(
        content,
        media_type=MEDIA_TYPES[str(kind)],
        headers={
            "Content-Disposition": f'attachment; filename="{fallback}"; '
            f"filename*=UTF-8''{quote(name, safe='')}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


def referencing_record(
    conn: Connection, sha256: str, agreement: str | None
) -> dict[str, Any] | None:
    """The ``document`` record of the first event entry whose document is ``sha256`` (only
    ``agreement``'s entries when given), or None. The text search only narrows the rows: a
    note quoting the hash is no reference."""
    query = (
        select(HISTORY.c.data)
        .where(HISTORY.c.kind == "event", HISTORY.c.data.contains(sha256, autoescape=True))
        .order_by(HISTORY.c.seq)
    )
    if agreement is not None:
        query = query.where(HISTORY.c.agreement == agreement)
    for (text,) in conn.execute(query):
        try:
            document = json.loads(text).get("document")
        except (ValueError, AttributeError):
            continue
        if isinstance(document, dict) and document.get("sha256") == sha256:
            return document
    return None


def own_documents(svc: Services, data: dict[str, Any] | None, agreement: str) -> set[str]:
    """The stored hash a ``{"sha256"}`` document names, if ``agreement``'s own history already
    references it (an earlier submit); otherwise nothing may be named by its hash."""
    document = data.get("document") if data is not None else None
    digest = document.get("sha256") if isinstance(document, dict) else None
    if not isinstance(digest, str) or not is_sha256(digest):
        return set()
    with svc.db.read() as conn:
        return {digest} if referencing_record(conn, digest, agreement) is not None else set()
