"""Documents with the e-SAR Card: the content-addressed store, type checks, and the CLI.

The store and the checks are exercised on real files, the CLI on both backends; the API
(multipart upload, download) is in tests/test_documents_api.py; the file makers are in
``tests.support.documents``.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, kpi_set
from tests.support.documents import ELF, docx_bytes, pdf_bytes, xlsx_bytes
from workflow.rules.errors import BadInput, IntegrityFailure
from workflow.store.documents import (
    DEFAULT_MAX_BYTES,
    DirectoryStore,
    document_type,
    documents_root,
    max_document_bytes,
    safe_name,
)

# --- the store and the checks --------------------------------------------------------------


def test_the_store_is_content_addressed_idempotent_and_atomic(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "docs")
    content = pdf_bytes()
    digest = store.put(content)
    assert digest == hashlib.sha256(content).hexdigest()
    path = tmp_path / "docs" / digest[:2] / digest
    assert path.read_bytes() == content
    assert store.put(content) == digest and store.exists(digest) and store.get(digest) == content
    assert [p.name for p in (tmp_path / "docs").rglob("*") if p.is_file()] == [digest]
    other = "0" * 64
    assert not store.exists(other) and not store.exists("../../etc/passwd")
    with pytest.raises(KeyError):
        store.get(other)
    with pytest.raises(ValueError):
        store.path("../" + digest[3:])
    path.write_bytes(content + b"x")  # tampered with on disk
    with pytest.raises(IntegrityFailure):
        store.get(digest)


def test_types_are_judged_by_content() -> None:
    assert document_type(pdf_bytes()) == "pdf"
    assert document_type(docx_bytes()) == "docx"
    assert document_type(xlsx_bytes()) == "xlsx"
    refused = [
        ELF,
        b"MZ\x90\x00" + b"\x00" * 100,  # a Windows executable
        b"",
        b"hello, not a pdf",
        docx_bytes(main="application/xml"),  # a ZIP that declares no Word main part
        docx_bytes(main="application/vnd.ms-word.document.macroEnabled.main+xml"),  # .docm
        _zip({"word/document.xml": b"<x/>"}),  # no [Content_Types].xml
        b"PK\x03\x04 truncated",
    ]
    for content in refused:
        with pytest.raises(BadInput, match="not a PDF, DOCX or XLSX"):
            document_type(content)


def test_a_zip_bomb_is_refused_from_its_declared_sizes() -> None:
    bomb = docx_bytes({"word/media/zeros.bin": b"\x00" * (8 * 1024 * 1024)})
    assert len(bomb) < 100_000
    with pytest.raises(BadInput, match="zip bomb"):
        document_type(bomb)


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_names_are_metadata_only() -> None:
    assert safe_name("../../etc/passwd.pdf", "pdf") == "passwd.pdf"
    assert safe_name("C:\\Users\\x\\รายงาน 6 เดือน.pdf", "pdf") == "รายงาน 6 เดือน.pdf"
    assert safe_name("a\x00b\x1b[31m\u202ec.pdf", "pdf") == "ab[31mc.pdf"
    assert safe_name("..", "docx") == "document.docx"
    assert safe_name("/", "pdf") == "document.pdf"
    assert len(safe_name("x" * 1000 + ".pdf", "pdf")) == 255


def test_the_store_root_and_the_size_limit_come_from_one_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUBRONG_DOCUMENTS", raising=False)
    monkeypatch.delenv("RUBRONG_MAX_DOCUMENT_BYTES", raising=False)
    monkeypatch.chdir(tmp_path)
    assert documents_root(f"sqlite:///{tmp_path}/sub/r.db") == tmp_path / "sub" / "documents"
    assert documents_root("sqlite:///rel.db") == tmp_path / "documents"
    assert documents_root("postgresql+psycopg://u@h/db") == tmp_path / "documents"
    assert documents_root("sqlite://") == tmp_path / "documents"
    monkeypatch.setenv("RUBRONG_DOCUMENTS", str(tmp_path / "elsewhere"))
    assert documents_root(f"sqlite:///{tmp_path}/r.db") == tmp_path / "elsewhere"
    assert max_document_bytes() == DEFAULT_MAX_BYTES == 20 * 1024 * 1024
    monkeypatch.setenv("RUBRONG_MAX_DOCUMENT_BYTES", "1000")
    assert max_document_bytes() == 1000
    for bad in ("-1", "0", "1e6", "lots"):
        monkeypatch.setenv("RUBRONG_MAX_DOCUMENT_BYTES", bad)
        with pytest.raises(BadInput, match="RUBRONG_MAX_DOCUMENT_BYTES"):
            max_document_bytes()


# --- the CLI, on both backends --------------------------------------------------------------


@pytest.fixture
def signed(loaded: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """cycle_2554 loaded, TH-50 and TH-51 signed; the store is ``<tmp>/documents``."""
    monkeypatch.delenv("RUBRONG_DOCUMENTS", raising=False)
    monkeypatch.delenv("RUBRONG_MAX_DOCUMENT_BYTES", raising=False)
    for org in ("TH-50", "TH-51"):
        for event, role, at, data in (
            ("propose_kpis", f"province:{org}", "2010-09-10", json.dumps(kpi_set())),
            ("agree", "committee", "2010-09-20", None),
            ("sign", "admin", "2010-11-15", None),
        ):
            extra = ["--data", data] if data else []
            result = loaded("fire", org, event, "--as", role, "--at", at, *extra)
            assert result.code == 0, result.err
    return loaded


def _sar6(cli: Cli, *extra: str, org: str = "TH-50", role: str | None = None) -> Any:
    role = role or f"province:{org}"
    return cli("fire", org, "submit_sar6", "--as", role, "--at", "2011-04-20", *extra)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _unchanged(cli: Cli) -> tuple[str, int]:
    return cli("status", "TH-50", "--json").json()[0]["state"], len(cli("history", "--json").json())


def test_a_pdf_is_stored_under_its_sha256_and_recorded(signed: Cli) -> None:
    content = pdf_bytes()
    (signed.cwd / "in").mkdir()
    (signed.cwd / "in" / "รายงาน SAR 6.pdf").write_bytes(content)
    card = [{"kpi": "1.1", "result": 72.5}]
    result = _sar6(
        signed, "--document", "in/รายงาน SAR 6.pdf", "--data", json.dumps({"card": card})
    )
    assert result.code == 0, result.err
    digest = hashlib.sha256(content).hexdigest()
    stored = signed.cwd / "documents" / digest[:2] / digest
    assert stored.read_bytes() == content
    entry = signed("history", "TH-50", "--json").json()[-1]
    assert entry["data"] == {
        "card": card,
        "document": {
            "sha256": digest,
            "name": "รายงาน SAR 6.pdf",
            "size": len(content),
            "type": "pdf",
        },
    }
    assert signed("verify", "--json").json()["ok"] is True
    # data.document.path works too, and a hash the store holds can be named again later.
    (signed.cwd / "book.xlsx").write_bytes(xlsx_bytes())
    esar9 = signed(
        "fire", "TH-50", "submit_esar9", "--as", "province:TH-50", "--at", "2011-07-01",
        "--data", json.dumps({"document": {"path": "book.xlsx"}}),
    )  # fmt: skip
    assert esar9.code == 0, esar9.err
    assert signed("history", "TH-50", "--json").json()[-1]["data"]["document"]["type"] == "xlsx"
    again = {"document": {"sha256": digest, "name": "SAR6.pdf"}}
    sar12 = signed(
        "fire", "TH-50", "submit_sar12", "--as", "province:TH-50", "--at", "2011-10-01",
        "--data", json.dumps(again),
    )  # fmt: skip
    assert sar12.code == 0, sar12.err
    recorded = signed("history", "TH-50", "--json").json()[-1]["data"]["document"]
    assert recorded == {"sha256": digest, "name": "SAR6.pdf", "size": len(content), "type": "pdf"}


def test_bad_documents_are_refused_and_nothing_is_written(
    signed: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = signed.cwd
    (cwd / "evil.pdf").write_bytes(ELF)
    (cwd / "empty.pdf").write_bytes(b"")
    (cwd / "big.pdf").write_bytes(pdf_bytes("x" * 5000))
    (cwd / "bomb.docx").write_bytes(docx_bytes({"zeros": b"\x00" * (8 * 1024 * 1024)}))
    before = _unchanged(signed)
    cases: list[tuple[list[str], str]] = [
        (["--document", "evil.pdf"], "not a PDF, DOCX or XLSX"),
        (["--document", "empty.pdf"], "empty"),
        (["--document", "bomb.docx"], "zip bomb"),
        (["--document", "missing.pdf"], "no such file"),
        (["--document", "."], "no such file"),
        (["--data", '{"document": {"sha256": "' + "a" * 64 + '"}}'], "document.sha256"),
        (["--data", '{"document": {"sha256": "../../etc/passwd"}}'], "document.sha256"),
        (["--data", '{"document": "report.pdf"}'], "must be an object"),
        (["--data", '{"document": {"path": "big.pdf", "owner": 1}}'], "document.owner"),
    ]
    cases.append((["--document", "big.pdf"], "over the 4096-byte limit"))
    for args, message in cases:
        if "big.pdf" in args:
            monkeypatch.setenv("RUBRONG_MAX_DOCUMENT_BYTES", "4096")
        result = _sar6(signed, *args)
        assert result.code == 2, (args, result.err)
        assert message in result.err, (args, result.err)
        assert len(result.err.strip().splitlines()) == 1
        assert _unchanged(signed) == before
    assert not (cwd / "documents").exists()


def test_a_path_trick_name_is_sanitised_and_nothing_lands_outside_the_store(signed: Cli) -> None:
    (signed.cwd / "report.pdf").write_bytes(pdf_bytes())
    outside = _files(signed.cwd.parent)
    data = {"document": {"path": "report.pdf", "name": "../../etc/passwd.pdf"}}
    result = _sar6(signed, "--data", json.dumps(data))
    assert result.code == 0, result.err
    assert (
        signed("history", "TH-50", "--json").json()[-1]["data"]["document"]["name"] == "passwd.pdf"
    )
    added = _files(signed.cwd.parent) - outside
    store = signed.cwd / "documents"
    assert [
        p for p in added if store not in p.parents and p.name.split("-")[0] != "rubrong.db"
    ] == []
    assert len([p for p in added if store in p.parents]) == 1


def test_checks_come_in_order_and_a_refused_event_reads_no_file(signed: Cli) -> None:
    (signed.cwd / "evil.pdf").write_bytes(ELF)
    not_own = _sar6(signed, "--document", "evil.pdf", role="province:TH-51")
    assert not_own.code == 4, not_own.err
    wrong_state = signed(
        "fire", "TH-52", "submit_sar6", "--as", "province:TH-52", "--document", "missing.pdf"
    )
    assert wrong_state.code == 3, wrong_state.err
    (signed.cwd / "report.pdf").write_bytes(pdf_bytes())
    not_a_submit = signed(
        "fire", "TH-50", "publish", "--as", "province:TH-50", "--document", "report.pdf"
    )
    assert not_a_submit.code == 2 and "submit_sar6" in not_a_submit.err
    assert not (signed.cwd / "documents").exists()


def test_the_evidence_pack_holds_the_documents_the_history_cites(signed: Cli) -> None:
    content = pdf_bytes()
    (signed.cwd / "sar6.pdf").write_bytes(content)
    assert _sar6(signed, "--document", "sar6.pdf").code == 0
    digest = hashlib.sha256(content).hexdigest()
    pack = signed.cwd / "pack"
    exported = signed("export", "TH-50", "--evidence", str(pack))
    assert exported.code == 0, exported.err
    assert (pack / "documents" / digest).read_bytes() == content
    bare = [sys.executable, "-I", "-S", str(pack / "verify_pack.py"), str(pack)]
    checked = subprocess.run(bare, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "documents: 1 cited by the history" in checked.stdout
    (pack / "documents" / digest).write_bytes(content + b"%")  # one byte more
    tampered = subprocess.run(bare, capture_output=True, text=True, timeout=120)
    assert tampered.returncode != 0
    assert f"documents/{digest}: content does not match" in tampered.stdout
