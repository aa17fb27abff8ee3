"""The e-SAR Card: the data of ``submit_sar6``, ``submit_esar9`` and ``submit_sar12``.

``{"card": [{"kpi": ID, "result": number, "note"?: text, "level"?: 1..5, "evidence"?: text}],
"document"?: {...}}``, both optional (no data, or ``{}``, is a bare submit). The card lists
KPIs of the agreement's current KPI version, each at most once; it is recorded as given.

The checks run at the engine's data step (:func:`workflow.usecases.event_data.interpret`), last in
CONTRACT.md's order. A document named by the CLI (``{"path": FILE}``) or uploaded over the API
travels to that step as a :class:`PendingDocument`: the ``document`` object as given, plus what
is needed to finish it. At the data step it is read, checked (size, type by content) and
stored, and replaced in the event's data by ``{"sha256", "name", "size", "type"}``; so a refused
event (not authorised, wrong state) never reads a file or writes a blob.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.rules.errors import BadInput, quoted
from workflow.rules.kpis import is_number
from workflow.store.documents import (
    MEDIA_TYPES,
    DocumentStore,
    DocumentTooLarge,
    accept,
    document_type,
    is_sha256,
    read_document,
    safe_name,
)

SUBMIT_EVENTS = ("submit_sar6", "submit_esar9", "submit_sar12")
ROW_FIELDS = ("kpi", "result", "note", "level", "evidence")
RECORD_FIELDS = ("sha256", "name", "size", "type")


@dataclass(frozen=True)
class Upload:
    """A file that came with the request: its name as the client gave it, and its bytes."""

    name: str
    content: bytes


class PendingDocument(dict[str, Any]):
    """A ``document`` object whose reading, checks and storing wait for the data step.

    As a dict it is the object as given (plain JSON for the engine's early checks); its
    attributes say how to finish it. :func:`check_submission` replaces it by the record.
    """

    def __init__(
        self,
        given: Mapping[str, Any],
        store: DocumentStore,
        limit: int,
        *,
        upload: Upload | None = None,
        local_files: bool = False,
        referable: Collection[str] | None = None,
    ) -> None:
        super().__init__(given)
        self.store = store
        self.limit = limit
        self.upload = upload
        self.local_files = local_files
        self.referable = referable

    def resolve(self, what: str) -> dict[str, Any]:
        """Read, check and store the document; its record for the history entry."""
        name = self.get("name")
        if name is not None and not isinstance(name, str):
            raise BadInput(f"{what}.name: must be text (ชื่อไฟล์ต้องเป็นข้อความ)")
        if self.upload is not None:
            _only(self, ("name",), what)
            document = accept(
                self.store, self.upload.content, name or self.upload.name, self.limit, what
            )
            return document.as_json()
        if "path" in self:
            if not self.local_files:
                raise BadInput(f"{what}.path: only the CLI reads files; upload the file instead")
            _only(self, ("path", "name"), what)
            path = self["path"]
            if not isinstance(path, str) or not path:
                raise BadInput(f"{what}.path: must be a file name (text)")
            content = read_document(Path(path), self.limit, f"{what}.path")
            return accept(self.store, content, name or path, self.limit, what).as_json()
        if "sha256" in self:
            return self._stored(name, what)
        raise BadInput(
            f'{what}: give {{"path": FILE}} (CLI), {{"sha256": HASH}} of a stored document, '
            "or upload the file with the event"
        )

    def _stored(self, name: str | None, what: str) -> dict[str, Any]:
        """A document uploaded earlier, named by its hash: accepted only if the store has it."""
        _only(self, RECORD_FIELDS, what)
        digest = self["sha256"]
        if not is_sha256(digest):
            raise BadInput(f"{what}.sha256: must be 64 lower-case hex digits")
        if not self.store.exists(digest) or (
            self.referable is not None and digest not in self.referable
        ):
            raise BadInput(
                f"{what}.sha256: no document with this hash is stored for this agreement; "
                "send the file itself (ไม่พบเอกสารนี้ในระบบ)"
            )
        content = self.store.get(digest)
        kind = document_type(content, what)
        if "size" in self and self["size"] != len(content):
            raise BadInput(f"{what}.size: the stored document has {len(content)} bytes")
        if "type" in self and self["type"] != kind:
            raise BadInput(f"{what}.type: the stored document is a {kind}")
        return {
            "sha256": digest,
            "name": safe_name(name or "", kind),
            "size": len(content),
            "type": kind,
        }


def _only(given: Mapping[str, Any], allowed: Sequence[str], what: str) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise BadInput(f"{what}.{unknown[0]}: unknown field here (fields: {', '.join(allowed)})")


def with_document(
    event: str,
    data: dict[str, Any] | None,
    store: DocumentStore,
    limit: int,
    *,
    path: str | None = None,
    upload: Upload | None = None,
    local_files: bool = False,
    referable: Collection[str] | None = None,
) -> dict[str, Any] | None:
    """The event's data with its ``document`` made pending (see the module docstring).

    ``path`` (the CLI's ``--document``) and ``upload`` (the API's file part) stand for a
    ``document`` object; either with an event other than the three submits, or beside a
    ``document`` already in the data, is bad usage (exit 2). An upload over the limit is
    refused here, as soon as its size is known (HTTP 413). ``local_files`` lets the document
    name a file to read (the CLI only); ``referable``, when given, are the only stored hashes
    a ``{"sha256"}`` document may name (over the API: those the agreement's own history
    already references, so nobody gains access to another's document by quoting its hash).
    """
    given = path is not None or upload is not None
    if given and event not in SUBMIT_EVENTS:
        raise BadInput(f"a document goes with {', '.join(SUBMIT_EVENTS)}, not {event}")
    if given and data is not None and "document" in data:
        raise BadInput("give the document once: either data.document or the file itself")
    if upload is not None and len(upload.content) > limit:
        raise DocumentTooLarge(
            f"document: {len(upload.content)} bytes is over the {limit}-byte limit "
            "(ไฟล์มีขนาดเกินกำหนด)"
        )
    if given:
        data = {**(data or {}), "document": {"path": path} if path is not None else {}}
    if data is None or event not in SUBMIT_EVENTS:
        return data
    document = data.get("document")
    if isinstance(document, Mapping) and not isinstance(document, PendingDocument):
        data = {
            **data,
            "document": PendingDocument(
                document,
                store,
                limit,
                upload=upload,
                local_files=local_files,
                referable=referable,
            ),
        }
    return data


def check_submission(event: str, data: dict[str, Any], kpi_ids: Sequence[str]) -> None:
    """The data step of a submit: check the card, finish the document (exit 2 when bad).

    ``data["document"]`` is replaced by the stored document's record."""
    what = f"{event}: document"
    if "card" in data:
        problems = card_problems(data["card"], kpi_ids)
        if problems:
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise BadInput(f"{event}: {problems[0]}{more}")
    if "document" not in data:
        return
    document = data["document"]
    if isinstance(document, PendingDocument):
        data["document"] = document.resolve(what)
    elif isinstance(document, Mapping):
        check_record(document, what)
    else:
        raise BadInput(f"{what}: must be an object (a file, or a stored document's sha256)")


def check_record(document: Mapping[str, Any], what: str) -> None:
    """A ``document`` record given as is (a scenario, the engine called directly): its shape."""
    if "path" in document:
        raise BadInput(f"{what}.path: only the CLI reads files")
    _only(document, RECORD_FIELDS, what)
    if not is_sha256(document.get("sha256")):
        raise BadInput(f"{what}.sha256: must be 64 lower-case hex digits")
    name = document.get("name")
    if not isinstance(name, str) or not name or safe_name(name, "") != name:
        raise BadInput(f"{what}.name: must be a plain file name (text, no directory part)")
    size = document.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise BadInput(f"{what}.size: must be a whole number of bytes ≥ 1")
    if "type" in document and document["type"] not in MEDIA_TYPES:
        raise BadInput(f"{what}.type: must be one of {', '.join(MEDIA_TYPES)}")


def card_problems(card: object, kpi_ids: Sequence[str]) -> list[str]:
    """Every problem of an e-SAR Card, each naming its row and field; ``[]`` when it is good."""
    if not isinstance(card, list):
        return [
            "card: must be an array of rows {kpi, result, note?, level?, evidence?} "
            "(e-SAR Card ต้องเป็นรายการตัวชี้วัด)"
        ]
    if not kpi_ids:
        return ["card: the agreement has no KPI set to report on (คำรับรองนี้ยังไม่มีตัวชี้วัด)"]
    if not card:
        return ["card: lists no KPI (ไม่มีตัวชี้วัดในรายงาน)"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, row in enumerate(card):
        label = f"card[{index}]"
        if not isinstance(row, dict):
            problems.append(f"{label}: must be an object {{kpi, result, note?, level?, evidence?}}")
            continue
        problems.extend(
            f"{label}.{key}: unknown field (fields: {', '.join(ROW_FIELDS)}) (ไม่รู้จักช่องนี้)"
            for key in row
            if key not in ROW_FIELDS
        )
        kpi = row.get("kpi")
        if not isinstance(kpi, str):
            problems.append(f"{label}.kpi: must be a KPI id (text) (ต้องระบุรหัสตัวชี้วัด)")
        elif kpi not in kpi_ids:
            problems.append(
                f"{label}.kpi: {quoted(kpi)} is not a KPI of the agreement's current KPI set "
                f"({', '.join(kpi_ids)}) (ไม่ใช่ตัวชี้วัดของคำรับรองนี้)"
            )
        elif kpi in seen:
            problems.append(
                f"{label}.kpi: {quoted(kpi)} is already listed at card[{seen[kpi]}] (ตัวชี้วัดซ้ำ)"
            )
        else:
            seen[kpi] = index
        if "result" not in row or not is_number(row["result"]):
            problems.append(f"{label}.result: must be a finite number (ผลการดำเนินงานต้องเป็นตัวเลข)")
        problems.extend(_optional_problems(label, row))
    return problems


def _optional_problems(label: str, row: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for key, thai in (("note", "หมายเหตุ"), ("evidence", "หลักฐาน")):
        if key in row and not isinstance(row[key], str):
            problems.append(f"{label}.{key}: must be text ({thai}ต้องเป็นข้อความ)")
    level = row.get("level")
    if "level" in row and (isinstance(level, bool) or level not in (1, 2, 3, 4, 5)):
        problems.append(
            f"{label}.level: must be a whole number from 1 to 5 (ระดับต้องเป็นจำนวนเต็ม 1–5)"
        )
    return problems
