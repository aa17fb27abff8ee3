"""Documents sent with the e-SAR Card: a content-addressed store, and what may go in it.

A document is kept once, under its SHA-256: ``<root>/ab/abcdef…`` (the first two hex digits
name a sub-directory). Writes go to a temporary file in that directory and are renamed into
place, so a reader never sees half a file and storing the same bytes twice changes nothing.
The store never builds a path from anything but a checked hash: a file's *name* is metadata
(:func:`safe_name`), never a path.

Only three kinds are accepted, judged by content and never by name: PDF (``%PDF-``), and
DOCX / XLSX (a ZIP whose ``[Content_Types].xml`` declares the WordprocessingML /
SpreadsheetML main part). The ZIP is inspected without unpacking it: only the small
``[Content_Types].xml`` is read, after its declared size and every entry's declared size and
compression ratio have been checked (zip bombs are refused before a byte is inflated).

Configuration (one function each): ``RUBRONG_DOCUMENTS`` (the store root; default
``documents/`` beside a SQLite database file, else ``./documents/``) and
``RUBRONG_MAX_DOCUMENT_BYTES`` (20 MiB by default).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Protocol
from xml.etree import ElementTree

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from workflow.rules.errors import BadInput, IntegrityFailure

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
ROOT_ENV = "RUBRONG_DOCUMENTS"
MAX_BYTES_ENV = "RUBRONG_MAX_DOCUMENT_BYTES"
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_MAIN_PARTS = {  # the content type of the main part, as [Content_Types].xml declares it
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": "xlsx",
}
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Zip-bomb guards, on the sizes the archive declares (nothing is inflated but the manifest).
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_INFLATED = 512 * 1024 * 1024
MAX_ZIP_RATIO = 200
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_NAME_CHARS = 255


class DocumentTooLarge(BadInput):
    """A document over the configured size limit (exit 2; HTTP 413)."""


@dataclass(frozen=True)
class DocumentInfo:
    """What the history records about a stored document."""

    sha256: str
    name: str
    size: int
    type: str

    def as_json(self) -> dict[str, str | int]:
        """``{"sha256", "name", "size", "type"}`` as the history entry's ``document``."""
        return {"sha256": self.sha256, "name": self.name, "size": self.size, "type": self.type}


class DocumentStore(Protocol):
    """Where documents live, addressed by the SHA-256 of their bytes."""

    def put(self, content: bytes) -> str:
        """Store ``content`` (idempotent) and return its SHA-256, lower-case hex."""
        ...

    def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``; ``KeyError`` when absent."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether ``sha256`` is stored."""
        ...


def is_sha256(value: object) -> bool:
    """True for 64 lower-case hex digits."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


class DirectoryStore:
    """A :class:`DocumentStore` in a directory: ``<root>/ab/abcdef…``, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where ``sha256`` lives; ``ValueError`` unless it is 64 lower-case hex digits."""
        if not is_sha256(sha256):
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, content: bytes) -> str:
        """Store ``content`` (a temporary file renamed into place) and return its SHA-256."""
        digest = hashlib.sha256(content).hexdigest()
        target = self.path(digest)
        if target.is_file():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str) -> bytes:
        """The stored bytes; ``KeyError`` when absent, exit 6 when they no longer match."""
        try:
            content = self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise KeyError(sha256) from None
        if hashlib.sha256(content).hexdigest() != sha256:
            raise IntegrityFailure(f"stored document {sha256} no longer matches its SHA-256")
        return content

    def exists(self, sha256: str) -> bool:
        """Whether a file is stored under ``sha256`` (False for anything not a hash)."""
        return is_sha256(sha256) and self.path(sha256).is_file()


def documents_root(db_url: str | None) -> Path:
    """The store root: ``RUBRONG_DOCUMENTS``, else ``documents/`` beside a SQLite database
    file, else ``./documents/`` (an absolute path, resolved against the working directory)."""
    configured = os.environ.get(ROOT_ENV)
    if configured:
        return Path(configured).absolute()
    if db_url:
        try:
            url = make_url(db_url)
        except ArgumentError:
            url = None
        database = url.database if url is not None else None
        if (
            url is not None
            and url.get_backend_name() == "sqlite"
            and database
            and database != ":memory:"
            and not database.startswith("file:")
        ):
            return Path(database).absolute().parent / "documents"
    return Path.cwd() / "documents"


def max_document_bytes() -> int:
    """The size limit: ``RUBRONG_MAX_DOCUMENT_BYTES`` (a whole number ≥ 1), 20 MiB by default."""
    text = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    if not text.isdigit() or int(text) < 1:
        raise BadInput(f"{MAX_BYTES_ENV} must be a whole number of bytes ≥ 1, not {text!r}")
    return int(text)


def default_store(db_url: str | None) -> DirectoryStore:
    """The directory store for the database at ``db_url`` (see :func:`documents_root`)."""
    return DirectoryStore(documents_root(db_url))


def safe_name(name: str, kind: str) -> str:
    """A file name fit to keep as metadata: no directory part, no control or format characters,
    at most 255 characters; ``document.<kind>`` when nothing usable is left."""
    base = PureWindowsPath(PurePosixPath(name.replace("\x00", "")).name).name
    cleaned = "".join(ch for ch in base if unicodedata.category(ch) not in ("Cc", "Cf"))
    cleaned = unicodedata.normalize("NFC", cleaned).strip().lstrip(".").strip()
    if not cleaned:
        return f"document.{kind}"
    return cleaned[-MAX_NAME_CHARS:] if len(cleaned) > MAX_NAME_CHARS else cleaned


def check_size(size: int, limit: int, what: str) -> None:
    """Exit 2 (HTTP 413) for a document over ``limit``; exit 2 for an empty one."""
    if size == 0:
        raise BadInput(f"{what}: the file is empty (ไฟล์ว่างเปล่า)")
    if size > limit:
        raise DocumentTooLarge(
            f"{what}: {size} bytes is over the {limit}-byte limit for a document (ไฟล์มีขนาดเกินกำหนด)"
        )


def document_type(content: bytes, what: str = "document") -> str:
    """``pdf``, ``docx`` or ``xlsx``, judged by content; exit 2 for anything else."""
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith(b"PK\x03\x04"):
        kind = _office_kind(content, what)
        if kind is not None:
            return kind
    raise BadInput(
        f"{what}: not a PDF, DOCX or XLSX file (judged by its content, not its name) "
        "(รับเฉพาะไฟล์ PDF, DOCX หรือ XLSX)"
    )


def _office_kind(content: bytes, what: str) -> str | None:
    """The Office Open XML kind a ZIP declares, or None; exit 2 for a zip bomb."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ZIP_ENTRIES:
                raise BadInput(f"{what}: the archive holds more than {MAX_ZIP_ENTRIES} entries")
            total = 0
            for entry in entries:
                total += entry.file_size
                ratio = entry.file_size / max(entry.compress_size, 1)
                if total > MAX_ZIP_INFLATED or (
                    entry.file_size > 1024 * 1024 and ratio > MAX_ZIP_RATIO
                ):
                    raise BadInput(f"{what}: the archive inflates too much (a zip bomb?)")
            names = {entry.filename for entry in entries}
            manifest = archive.getinfo("[Content_Types].xml")
            if manifest.file_size > MAX_MANIFEST_BYTES:
                return None
            with archive.open(manifest) as stream:
                text = stream.read(MAX_MANIFEST_BYTES + 1)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, NotImplementedError, ValueError):
        return None
    if len(text) > MAX_MANIFEST_BYTES or b"<!DOCTYPE" in text or b"<!ENTITY" in text:
        return None  # no DTDs: nothing in a real manifest needs one, and entities can explode
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None
    for override in root.iter(f"{_CT_NS}Override"):
        kind = _MAIN_PARTS.get(override.get("ContentType", ""))
        part = override.get("PartName", "").lstrip("/")
        if kind is not None and part in names:
            return kind
    return None


def read_document(path: Path, limit: int, what: str) -> bytes:
    """A local file's bytes for the store; exit 2 when missing, unreadable, empty or too big
    (the size is checked before the file is read)."""
    try:
        if not path.is_file():
            raise BadInput(f"{what}: no such file: {path} (ไม่พบไฟล์)")
        check_size(path.stat().st_size, limit, what)
        with path.open("rb") as stream:
            content = stream.read(limit + 1)
    except OSError as exc:
        raise BadInput(f"{what}: cannot read {path}: {exc.strerror or exc}") from exc
    check_size(len(content), limit, what)
    return content


def accept(store: DocumentStore, content: bytes, name: str, limit: int, what: str) -> DocumentInfo:
    """Check a document's size and type, then store it; the history's record of it."""
    check_size(len(content), limit, what)
    kind = document_type(content, what)
    digest = store.put(content)
    return DocumentInfo(digest, safe_name(name, kind), len(content), kind)
