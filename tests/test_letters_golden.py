"""A Thai reviewer's test: every letter of the FY2554 cycle, compared with reviewed files.

Every notice kind × every milestone that sends one (a province, and a group for SAR 12) is
rendered by ``workflow.usecases.letters.build_letter`` with a fixed clock (the notice's own send
time), and its text (with the headers a reader sees), HTML and ``.ics`` are compared with the
files under ``tests/golden/letters/``. After a deliberate wording change, regenerate them with
``RUBRONG_UPDATE_GOLDEN=1 .venv/bin/pytest -p no:xdist tests/test_letters_golden.py`` and read
the diff as a Thai civil servant would before committing it.

Independently of the goldens, every letter must read as written, not assembled: no doubled verb
(``ยังมิได้จัดส่งส่ง…``, ``submit submit``), no internal id in running text (``TH-50``,
``sar6``; the reference number, the re-send command, the server's error and links may carry
ids), and each one states how to submit, whom to contact and its reference.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from notifications.keys import message_id, outbox_key
from notifications.message import OutgoingMail, mail_bytes
from notifications.subjects import subject_for
from tests.support.letters import DOUBLED_EN, DOUBLED_TH, INTERNAL_ID, running_text
from workflow.config.model import Cycle, Milestone
from workflow.config.validate import read_cycle_file
from workflow.rules.timeutil import at_time_of_day, bangkok_date, parse_instant
from workflow.store.repository import StoredCycle
from workflow.usecases.letters import build_letter

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "letters"
UPDATE = os.environ.get("RUBRONG_UPDATE_GOLDEN") == "1"
SAMPLE_ORGS = ("TH-50", "north-upper-1")  # Chiang Mai; its group (SAR 12 letters only)


def cycle() -> StoredCycle:
    """FY2554 as the engine holds it (the parsed file, parties included)."""
    return StoredCycle(read_cycle_file(ROOT / "cycle_2554.toml"), 1, None)


def party(settings: Cycle, ident: str) -> SimpleNamespace:
    """An ``organisations`` row of the cycle, as dispatch reads it."""
    org = next(o for o in settings.parties() if o.id == ident)
    return SimpleNamespace(
        id=org.id,
        kind=org.kind,
        name_th=org.name_th,
        name_en=org.name_en,
        email=org.email,
        supervisor_email=org.supervisor_email,
    )


def _row(
    stored: StoredCycle,
    milestone: Milestone,
    org: SimpleNamespace | None,
    kind: str,
    notice: str | None,
    offset: int,
    context: dict[str, Any],
) -> dict[str, Any]:
    settings = stored.settings
    due = milestone.due.isoformat() if milestone.due else None
    label = f"digest-{notice}" if kind == "digest" else kind
    key = outbox_key(stored.id, org.id if org else None, milestone.id, due, label, offset)
    to_supervisor = notice == "escalation"
    if org is None:
        recipient = settings.opdc_supervisor_email if to_supervisor else settings.opdc_email
    else:
        recipient = org.supervisor_email if kind == "escalation" else org.email
    return {
        "key": key,
        "cycle_id": stored.id,
        "agreement": org.id if org else None,
        "milestone": milestone.id,
        "kind": kind,
        "notice": notice,
        "recipient": recipient,
        "recipient_kind": (
            ("supervisor" if to_supervisor else "opdc")
            if org is None
            else ("supervisor" if kind == "escalation" else org.kind)
        ),
        "subject": subject_for(
            kind,
            cycle_id=stored.id,
            milestone_id=milestone.id,
            milestone_title_th=milestone.title_th,
            milestone_title_en=milestone.title_en,
            due=milestone.due,
            offset_days=None if kind in ("receipt", "correction") else offset,
            digest_of=notice if kind == "digest" else None,
            previous_due=dt.date.fromisoformat(context["previous_due"])
            if kind == "correction"
            else None,
        ),
        "message_id": message_id(key),
        "context": json.dumps(context, ensure_ascii=False),
    }


def letters() -> Iterator[tuple[str, OutgoingMail]]:
    """(golden name, letter) for every notice kind × milestone of FY2554."""
    stored = cycle()
    settings, rules = stored.settings, stored.settings.notifications
    calendar, scope = stored.calendar, settings.calendar.receiver_scope
    pending = [  # as tick records them: id, name_th, kind, name_en
        ["TH-50", "เชียงใหม่", "province", "Chiang Mai"],
        ["north-upper-1", "ภาคเหนือตอนบน 1", "group", "Upper Northern 1"],
    ]
    for m in settings.milestones:
        if m.kind != "deliverable":
            continue
        notices: list[tuple[str, int, int]] = []
        if m.due is not None:
            notices += [
                ("reminder", n, at_time_of_day(m.due - dt.timedelta(days=n), rules.send_time))
                for n in m.reminders
            ]
            for notice, n in (
                ("overdue", rules.overdue_after),
                ("escalation", rules.escalate_after),
            ):
                notices.append(
                    (notice, n, at_time_of_day(m.due + dt.timedelta(days=n), rules.send_time))
                )
        if m.actor == "opdc":
            for notice, n, at in notices:
                row = _row(
                    stored, m, None, "digest", notice, n, {"pending": pending, "digest_of": notice}
                )
                yield f"{m.id}/OPDC.digest-{notice}-{n}", build_letter(stored, row, None, at)
            continue
        orgs = SAMPLE_ORGS if m.penalty_per_business_day is not None else SAMPLE_ORGS[:1]
        for ident in orgs:
            org = party(settings, ident)
            for notice, n, at in notices:
                row = _row(stored, m, org, notice, notice, n, {})
                yield f"{m.id}/{ident}.{notice}-{n}", build_letter(stored, row, org, at)
            if m.due is not None:  # the deadline moved here from a week earlier
                was = m.due - dt.timedelta(days=7)
                at = at_time_of_day(was - dt.timedelta(days=3), "10:00")
                context: dict[str, Any] = {"previous_due": was.isoformat()}
                row = _row(stored, m, org, "correction", "correction", 2, context)
                yield f"{m.id}/{ident}.correction", build_letter(stored, row, org, at)
            arrivals = {"done": parse_instant("2010-12-10T10:00")}
            if m.due is not None:
                late_day = m.due + dt.timedelta(days=3)
                on_time = m.due - dt.timedelta(days=2)
                arrivals = {
                    "on-time": at_time_of_day(on_time, "10:15"),
                    "late": at_time_of_day(late_day, "10:15"),
                }
            for label, at in arrivals.items():
                days = calendar.late_business_days(m.due, bangkok_date(at), scope) if m.due else 0
                context = {"event_at": at, "late_business_days": days}
                row = _row(stored, m, org, "receipt", None, 0, context)
                yield f"{m.id}/{ident}.receipt-{label}", build_letter(stored, row, org, at)
        failed = outbox_key(
            stored.id,
            "TH-50",
            m.id,
            m.due.isoformat() if m.due else None,
            "reminder" if m.due else "receipt",
            7 if m.due else 0,
        )
        alert: dict[str, Any] = {
            "alert_key": failed,
            "alert_reason": "550 5.1.1 <governor@th-50.example> unknown",
        }
        row = _row(stored, m, None, "alert", None, 0, alert)
        row["key"], row["recipient_kind"] = f"{failed}/alert", "opdc"
        yield (
            f"{m.id}/OPDC.alert",
            build_letter(stored, row, None, parse_instant("2011-01-05T09:03")),
        )


def parsed(mail: OutgoingMail) -> EmailMessage:
    """The letter as a mail client parses it."""
    message = email.message_from_bytes(mail_bytes(mail), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def reader_view(mail: OutgoingMail) -> dict[str, bytes]:
    """What the golden files hold: headers + text, the HTML, and the calendar file."""
    message = parsed(mail)
    heads = ("Subject", "To", "Cc", "Message-ID", "In-Reply-To", "References", "Auto-Submitted")
    head = "".join(f"{name}: {message[name]}\n" for name in heads if message[name] is not None)
    files = {
        ".txt": (head + "\n" + mail.rendered.text).encode("utf-8"),
        ".html": mail.rendered.html.encode("utf-8"),
    }
    if mail.ics is not None:
        files[".ics"] = mail.ics.replace(b"\r\n", b"\n")
    return files


ALL = list(letters())


def test_the_golden_letters_are_unchanged() -> None:
    """Every letter equals its reviewed file; no reviewed file is left without a letter."""
    produced: dict[Path, bytes] = {}
    for name, mail in ALL:
        for suffix, data in reader_view(mail).items():
            produced[GOLDEN / f"{name}{suffix}"] = data
    if UPDATE:
        for path in GOLDEN.rglob("*"):
            if path.is_file() and path not in produced:
                path.unlink()
        for path, data in produced.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    stale = sorted(str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*.*") if p not in produced)
    assert not stale, f"reviewed files without a letter (RUBRONG_UPDATE_GOLDEN=1): {stale}"
    changed = [
        str(path.relative_to(GOLDEN))
        for path, data in produced.items()
        if not path.exists() or path.read_bytes() != data
    ]
    assert not changed, f"letters differ from the reviewed files: {changed[:20]}"
    kinds = {name.split(".")[-1].split("-")[0] for name, _ in ALL}
    assert kinds == {
        "reminder",
        "overdue",
        "escalation",
        "receipt",
        "digest",
        "alert",
        "correction",
    }


@pytest.mark.parametrize(("name", "mail"), ALL, ids=[name for name, _ in ALL])
def test_a_letter_reads_as_written(name: str, mail: OutgoingMail) -> None:
    """No doubled verb, no internal id in running text; Thai first, English beneath."""
    for line in running_text(mail.rendered.text, mail.rendered.html):
        assert not DOUBLED_TH.search(line), (name, line)
        assert not DOUBLED_EN.search(line), (name, line)
        assert not INTERNAL_ID.search(line), (name, line)
    text = mail.rendered.text
    assert text.index("เรียน") < text.index("Dear")
    assert "ผู้บังคับบัญชาของ" not in text and "Supervisor of" not in text


@pytest.mark.parametrize(("name", "mail"), ALL, ids=[name for name, _ in ALL])
def test_a_letter_says_how_whom_and_which(name: str, mail: OutgoingMail) -> None:
    """Submission channel (notices), the contact, the reference, Auto-Submitted, the thread."""
    message = parsed(mail)
    text = mail.rendered.text
    kind = name.split(".")[-1].split("-")[0]
    assert "เลขที่อ้างอิง 2554/" in text and "Reference: 2554/" in text
    assert "ผู้ประสานงาน กลุ่มงานประเมินผล" in text and "tel. 0 2356 9999" in text
    assert "opdc@opdc.rubrong.example" in text and "59/1" in text
    if kind in ("reminder", "overdue", "escalation"):
        assert "ช่องทางดำเนินการ" in text and "How to submit" in text
        assert "ภายในวัน" in text and " 25" in text  # a Buddhist-Era deadline
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == mail.message_id
    assert message["References"] == message["In-Reply-To"] == mail.thread
    if kind == "escalation":
        assert message["Cc"] is not None and "สำเนาเรียน ผู้ว่าราชการจังหวัด" in text
        assert "เรียน ปลัดกระทรวงมหาดไทย" in text and "Permanent Secretary for Interior" in text
    if "sar12/" in name and (kind in ("overdue", "escalation") or name.endswith("late")):
        assert "0.0500" in text  # the rule and what has accrued
    if kind in ("reminder", "overdue") or (kind == "digest" and "escalation" not in name):
        assert mail.ics is not None and b"METHOD:PUBLISH" in mail.ics
    if kind == "receipt" and "publish/" not in name:
        assert mail.ics is not None and b"METHOD:CANCEL" in mail.ics


def test_sar12_penalty_figures() -> None:
    """The penalty rule and the accrued amount at the letter's date, on OPDC's calendar."""
    found = {name: mail.rendered.text for name, mail in ALL if name.startswith("sar12/TH-50")}
    # Due Mon 31 Oct 2011 (a flood holiday kept nationwide); 1 Nov is business day 1.
    assert "จะล่าช้า 1 วันทำการ คิดเป็นคะแนนที่ถูกหัก 0.0500 คะแนน" in found["sar12/TH-50.overdue-1"]
    # 7 Nov: 1, 2, 3, 4, 7 November.
    escalation = found["sar12/TH-50.escalation-7"]
    assert "จะล่าช้า 5 วันทำการ คิดเป็นคะแนนที่ถูกหัก 0.2500 คะแนน" in escalation
    assert "it is 5 business days late: 0.2500 points are deducted" in escalation
    # Arrived Thu 3 Nov: 3 business days (DOMAIN.md's example).
    assert "จำนวน 3 วันทำการ คิดเป็นคะแนนที่ถูกหัก 0.1500 คะแนน" in found["sar12/TH-50.receipt-late"]
    assert "0.0500 คะแนนต่อวันทำการ" in found["sar12/TH-50.reminder-14"]
    sar6 = next(mail for name, mail in ALL if name == "sar6/TH-50.overdue-1").rendered.text
    assert "0.0500" not in sar6 and "คะแนนที่ถูกหัก" not in sar6
