"""Evidence packs: what ``export --evidence`` writes, the offline checks, and tampering."""

from __future__ import annotations

import email
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from notifications.dispatch import dispatch
from notifications.mailers import MaildirMailer
from tests.conftest import ROOT, Cli, kpi_set
from tests.served import prepare, serve
from workflow.clock import VirtualClock
from workflow.engine import FireRequest, fire
from workflow.evidence import main as evidence_main
from workflow.evidence import verify_pack
from workflow.store import Database
from workflow.tick import tick
from workflow.timeutil import parse_instant
from workflow.web import create_app


def _year(url: str, maildir: Path) -> tuple[VirtualClock, str]:
    """Reminders sent; TH-50 proposes (receipt sent), the others miss the deadline; TH-50 agreed."""
    clock = VirtualClock(parse_instant("2010-08-01"))
    token = prepare(url, clock, {"auditor": "auditor"})["auditor"]
    db, mailer = Database(url), MaildirMailer(maildir)
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
        [sys.executable, "-m", "workflow.evidence", "verify", str(pack)],
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
