"""Evidence packs: what ``export --evidence`` writes, the offline checks, and tampering."""

from __future__ import annotations

import email
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from notifications.mailers import MaildirMailer, Mailer, SmtpMailer
from notifications.sink import free_port
from tests.conftest import ROOT, Cli, kpi_set
from tests.support.history import rewrite_chain
from tests.support.served import prepare, serve
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.usecases.dispatch import dispatch
from workflow.usecases.evidence import main as evidence_main
from workflow.usecases.evidence import verify_pack
from workflow.usecases.fire import FireRequest, fire
from workflow.usecases.tick import tick
from workflow.web import create_app


def _year(url: str, maildir: Path, mailer: Mailer | None = None) -> tuple[VirtualClock, str]:
    """Reminders sent; TH-50 proposes (receipt sent), the others miss the deadline; TH-50 agreed."""
    clock = VirtualClock(parse_instant("2010-08-01"))
    token = prepare(url, clock, {"auditor": "auditor"})["auditor"]
    db, mailer = Database(url), mailer or MaildirMailer(maildir)
    for now, action in [
        ("2010-08-30T10:00", "tick"),
        ("2010-09-10T10:00", "propose"),
        ("2010-09-10T10:05", "send"),
        ("2010-09-14T10:00", "tick"),
        ("2010-09-20T10:00", "agree"),
    ]:
        clock.set(parse_instant(now))
        if action == "tick":
            tick(db, clock, clock.now())
        if action in ("tick", "send"):
            dispatch(db, mailer, clock.now())
        if action == "propose":
            fire(db, clock, FireRequest("TH-50", "propose_kpis", "province:TH-50", data=kpi_set()))
        if action == "agree":
            fire(db, clock, FireRequest("TH-50", "agree", "committee"))
    db.dispose()
    return clock, token


def _offline_check(pack: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workflow.usecases.evidence", "verify", str(pack)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def _sha256sum(pack: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sha256sum", "--quiet", "-c", "SHA256SUMS"], capture_output=True, text=True, cwd=pack
    )


def test_export_writes_a_pack_that_checks_out_offline(db_url: str, tmp_path: Path) -> None:
    maildir = tmp_path / "maildir"
    _year(db_url, maildir)
    cli = Cli(db_url, tmp_path)
    pack = tmp_path / "pack"
    result = cli("export", "TH-50", "--evidence", str(pack))
    assert result.code == 0, result.err
    assert "sha256sum -c SHA256SUMS" in result.out

    manifest = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
    history = json.loads((pack / "history.json").read_text(encoding="utf-8"))
    chain = json.loads((pack / "chain.json").read_text(encoding="utf-8"))
    assert history == cli("history", "TH-50", "--json").json()
    assert [entry["event"] for entry in history] == ["propose_kpis", "agree"]
    assert chain == cli("history", "--json").json()[: history[-1]["seq"]]
    assert manifest["chain"] == {
        "file": "chain.json",
        "entries": len(chain),
        "head": chain[-1]["hash"],
        "verified": True,
        "first_bad_seq": None,
        "reason": None,
    }
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((pack / name).read_bytes()).hexdigest() == digest, name
    score = json.loads((pack / "score.json").read_text(encoding="utf-8"))
    assert score == cli("score", "TH-50", "--json").json()
    csv_text = (pack / "history.csv").read_text(encoding="utf-8-sig")
    assert csv_text.splitlines()[0].startswith("seq,cycle,agreement,kind,event,from,to")
    assert history[-1]["hash"] in csv_text.splitlines()[-1]

    sent = [
        row for row in json.loads((pack / "outbox.json").read_text()) if row["status"] == "sent"
    ]
    assert sorted(row["kind"] for row in sent) == ["receipt", "reminder"]
    delivered = {}
    for path in (maildir / "new").iterdir():
        delivered[email.message_from_bytes(path.read_bytes())["Message-ID"]] = path.read_bytes()
    emls = sorted((pack / "mail").glob("*.eml"))
    assert [p.name.split("-", 1)[1] for p in emls] == [
        "reminder-propose_kpis.eml",
        "receipt-propose_kpis.eml",
    ]
    for eml in emls:
        message_id = email.message_from_bytes(eml.read_bytes())["Message-ID"]
        assert eml.read_bytes() == delivered[message_id], f"{eml.name} differs from what was sent"

    check = _offline_check(pack)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"ending at {chain[-1]['hash']}" in check.stdout
    assert _sha256sum(pack).returncode == 0

    again = cli("export", "TH-50", "--evidence", str(pack))
    assert again.code == 2 and "not an empty directory" in again.err
    assert cli("export", "TH-99", "--evidence", str(tmp_path / "x")).code == 2


def test_a_tampered_pack_fails_its_checks(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _year(sqlite_url, tmp_path / "maildir")
    pack = tmp_path / "pack"
    assert Cli(sqlite_url, tmp_path)("export", "TH-50", "--evidence", str(pack)).code == 0

    edited = tmp_path / "edited"
    shutil.copytree(pack, edited)
    history = edited / "history.json"
    history.write_text(history.read_text().replace('"committee"', '"admin"'))
    assert "history.json: SHA-256 does not match manifest.json" in verify_pack(edited)
    assert _sha256sum(edited).returncode != 0
    assert evidence_main(["verify", str(edited)]) == 6

    # A forger who also rewrites the hashes in the manifest is caught by the chain itself.
    forged = tmp_path / "forged"
    shutil.copytree(pack, forged)
    chain = json.loads((forged / "chain.json").read_text())
    chain[0]["actor"] = "admin"
    (forged / "chain.json").write_text(json.dumps(chain, ensure_ascii=False))
    manifest = json.loads((forged / "manifest.json").read_text())
    manifest["files"]["chain.json"] = hashlib.sha256(
        (forged / "chain.json").read_bytes()
    ).hexdigest()
    (forged / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_pack(forged)
    assert "history chain broken at seq 1: entry 1: content was altered" in problems
    assert "history.json: entry seq 1 differs from chain.json" in problems
    assert evidence_main(["verify", str(forged)]) == 6
    assert "FAIL history chain broken at seq 1" in capsys.readouterr().out

    (pack / "stray.txt").write_text("added later")
    assert verify_pack(pack) == ["stray.txt: not listed in manifest.json"]


def test_tampering_with_the_database_is_named_by_verify_api_and_evidence(
    db_url: str, tmp_path: Path
) -> None:
    clock, token = _year(db_url, tmp_path / "maildir")
    cli = Cli(db_url, tmp_path)
    assert cli("verify").code == 0
    db = Database(db_url)
    with db.write() as conn:
        conn.execute(text('UPDATE history SET data = \'{"milestone": "sign"}\' WHERE seq = 2'))
    db.dispose()

    result = cli("verify", "--json")
    assert result.code == 6 and "seq 2" in result.err
    assert result.json()["first_bad_seq"] == 2

    with serve(create_app(db_url, clock)) as base:
        answer = httpx.get(f"{base}/api/v1/verify", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.json()["ok"] is False and answer.json()["first_bad_seq"] == 2

    pack = tmp_path / "pack"
    exported = cli("export", "TH-50", "--evidence", str(pack))
    assert exported.code == 6 and "seq 2" in exported.err
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["chain"]["verified"] is False and manifest["chain"]["first_bad_seq"] == 2
    assert verify_pack(pack) == ["history chain broken at seq 2: entry 2: content was altered"]
    check = _offline_check(pack)
    assert check.returncode == 6 and "seq 2" in check.stdout


@pytest.mark.parametrize("content", ["[", '{"format": "other"}', "[1, 2]"])
def test_a_broken_manifest_is_reported_not_crashed_on(tmp_path: Path, content: str) -> None:
    (tmp_path / "manifest.json").write_text(content)
    problems = verify_pack(tmp_path)
    assert problems and "manifest.json" in problems[-1]


# --- proof of notice: the bytes sent; the bare-python verifier; checkpoints in the pack --------

BARE_PYTHON = Path("/usr/bin/python3") if Path("/usr/bin/python3").is_file() else None


class DataAsReceived:
    """An aiosmtpd handler keeping each DATA exactly as the server received it."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(bytes(envelope.original_content))
        return "250 accepted"


def _bare_verify(pack: Path) -> subprocess.CompletedProcess[str]:
    """verify_pack.py run by a Python that sees no site-packages and no rubrong (-I -S)."""
    python = str(BARE_PYTHON or sys.executable)
    return subprocess.run(
        [python, "-I", "-S", "verify_pack.py"],
        capture_output=True,
        text=True,
        cwd=pack,
        timeout=120,
    )


def _reseal(pack: Path, name: str) -> None:
    """Make manifest.json and SHA256SUMS agree with an edited ``name``, as a forger would."""
    manifest = json.loads((pack / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256((pack / name).read_bytes()).hexdigest()
    (pack / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
    listed = {**manifest["files"], "manifest.json": ""}
    lines = []
    for item in sorted(listed):
        lines.append(f"{hashlib.sha256((pack / item).read_bytes()).hexdigest()}  {item}\n")
    (pack / "SHA256SUMS").write_text("".join(lines))


def test_each_eml_is_what_the_smtp_server_received(db_url: str, tmp_path: Path) -> None:
    handler = DataAsReceived()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        _year(db_url, tmp_path / "unused", SmtpMailer("127.0.0.1", port))
    finally:
        controller.stop()
    assert len(handler.received) >= 2
    db = Database(db_url)
    with db.read() as conn:
        stored = conn.execute(
            text("SELECT key, sent_bytes, sent_sha256 FROM outbox WHERE status = 'sent'")
        ).all()
    db.dispose()
    # The outbox keeps, for every sent row, exactly what the server received, and its SHA-256.
    assert sorted(bytes(row.sent_bytes) for row in stored) == sorted(handler.received)
    for row in stored:
        assert row.sent_sha256 == hashlib.sha256(bytes(row.sent_bytes)).hexdigest()

    cli = Cli(db_url, tmp_path)
    pack = tmp_path / "pack"
    assert cli("export", "TH-50", "--evidence", str(pack)).code == 0
    emls = sorted((pack / "mail").glob("*.eml"))
    assert len(emls) == 2
    for eml in emls:
        assert eml.read_bytes() in handler.received, f"{eml.name} is not what the server got"
        assert b"\r\n" in eml.read_bytes()
    ledger = json.loads((pack / "ledger.json").read_text(encoding="utf-8"))
    assert [row["kind"] for row in ledger] == ["reminder", "receipt"]
    for row in ledger:
        assert set(row) >= {"key", "kind", "to", "subject", "sent_at", "message_id", "sha256"}
        assert row["kept"] is True
        assert row["sha256"] == hashlib.sha256((pack / row["file"]).read_bytes()).hexdigest()
        parsed = email.message_from_bytes((pack / row["file"]).read_bytes())
        assert parsed["Message-ID"] == row["message_id"]
    csv_lines = (pack / "ledger.csv").read_text(encoding="utf-8-sig").splitlines()
    assert csv_lines[0] == "key,kind,to,subject,sent_at,message_id,sha256,file"
    assert len(csv_lines) == 3

    check = _bare_verify(pack)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "mail: 2 .eml files are the bytes sent" in check.stdout
    assert "history chain:" in check.stdout and "SHA256SUMS" in check.stdout
    assert check.stdout.rstrip().splitlines()[-1].startswith("OK")

    # One byte of one .eml changed: the sums catch it, and so does the ledger after a forger
    # has re-sealed the sums and the manifest.
    data = bytearray(emls[0].read_bytes())
    data[-3] = ord("A") if data[-3] != ord("A") else ord("B")
    emls[0].write_bytes(bytes(data))
    altered = _bare_verify(pack)
    assert altered.returncode == 1
    assert f"FAIL  mail/{emls[0].name}: SHA-256 does not match" in altered.stdout
    name = f"mail/{emls[0].name}"
    _reseal(pack, name)
    resealed = _bare_verify(pack)
    assert resealed.returncode == 1
    assert f"{name}: SHA-256 does not match ledger.json (not as sent)" in resealed.stdout
    assert verify_pack(pack) == [f"{name}: SHA-256 does not match ledger.json (not as sent)"]


def test_a_message_sent_before_bytes_were_kept_is_listed_not_kept(
    sqlite_url: str, tmp_path: Path
) -> None:
    _year(sqlite_url, tmp_path / "maildir")
    db = Database(sqlite_url)
    with db.write() as conn:
        conn.execute(
            text(
                "UPDATE outbox SET sent_bytes = NULL, sent_sha256 = NULL "
                "WHERE kind = 'receipt' AND status = 'sent'"
            )
        )
        (receipt,) = conn.execute(text("SELECT key FROM outbox WHERE kind = 'receipt'")).all()
    db.dispose()
    pack = tmp_path / "pack"
    assert Cli(sqlite_url, tmp_path)("export", "TH-50", "--evidence", str(pack)).code == 0
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["mail"]["sent"] == 2 and manifest["mail"]["kept"] == 1
    assert [item["key"] for item in manifest["mail"]["not_kept"]] == [receipt.key]
    assert "not kept" in manifest["mail"]["not_kept"][0]["note"]
    assert [p.name.split("-", 1)[1] for p in (pack / "mail").glob("*.eml")] == [
        "reminder-propose_kpis.eml"
    ]
    (row,) = [r for r in json.loads((pack / "ledger.json").read_text()) if r["key"] == receipt.key]
    assert (row["kept"], row["file"], row["sha256"]) == (False, None, None)
    check = _bare_verify(pack)
    assert check.returncode == 0, check.stdout
    assert "(1 sent before bytes were kept: not kept)" in check.stdout


def test_stored_bytes_altered_in_the_database_fail_the_export(
    sqlite_url: str, tmp_path: Path
) -> None:
    _year(sqlite_url, tmp_path / "maildir")
    db = Database(sqlite_url)
    with db.write() as conn:
        conn.execute(
            text("UPDATE outbox SET sent_bytes = :b WHERE kind = 'receipt'"), {"b": b"forged\r\n"}
        )
    db.dispose()
    pack = tmp_path / "pack"
    result = Cli(sqlite_url, tmp_path)("export", "TH-50", "--evidence", str(pack))
    assert result.code == 6 and "stored bytes do not match" in result.err
    problems = verify_pack(pack)
    assert len(problems) == 1 and "SHA-256 does not match ledger.json" in problems[0]


def test_a_pack_with_a_checkpoint_is_checked_offline(sqlite_url: str, tmp_path: Path) -> None:
    _year(sqlite_url, tmp_path / "maildir")
    cli = Cli(sqlite_url, tmp_path)
    assert cli("keygen", "--out", str(tmp_path / "keys")).code == 0
    key, public = tmp_path / "keys" / "checkpoint.key", tmp_path / "keys" / "checkpoint.pub"
    point = tmp_path / "checkpoint.json"
    assert cli("checkpoint", "--key", str(key), "-o", str(point)).code == 0
    signed = json.loads(point.read_text())
    pack = tmp_path / "pack"
    args = ("export", "TH-50", "--evidence", str(pack))
    exported = cli(*args, "--checkpoint", str(point), "--public-key", str(public))
    assert exported.code == 0, exported.err
    chain = json.loads((pack / "chain.json").read_text())
    assert len(chain) == signed["seq"]  # the chain reaches the signed entry
    assert (pack / "checkpoint.json").read_bytes() == point.read_bytes()
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["checkpoint"]["holds"] is True
    check = _bare_verify(pack)
    assert check.returncode == 0, check.stdout
    assert f"checkpoint: Ed25519 signature holds; entry {signed['seq']}" in check.stdout
    assert "checkpoint.json" in (pack / "README.txt").read_text()

    forged = tmp_path / "forged"
    shutil.copytree(pack, forged)
    edited = {**signed, "recorded_at": "2010-01-01T00:00:00+07:00"}
    (forged / "checkpoint.json").write_text(json.dumps(edited))
    _reseal(forged, "checkpoint.json")
    assert verify_pack(forged) == ["checkpoint.json: the Ed25519 signature does not hold"]
    assert _bare_verify(forged).returncode == 1

    # A forger rewrites the chain after the checkpoint was made: the export says so (6).
    rewrite_chain(sqlite_url, 1, "admin")
    again = cli("export", "TH-50", "--evidence", str(tmp_path / "again"), "--checkpoint",
                str(point), "--public-key", str(public))  # fmt: skip
    assert again.code == 6 and "rewritten" in again.err
    assert verify_pack(tmp_path / "again") == [
        f"checkpoint.json: entry {signed['seq']} of chain.json is not the one signed"
    ]
    half = cli(*args[:3], str(tmp_path / "half"), "--checkpoint", str(point))
    assert half.code == 2 and not (tmp_path / "half").exists()
