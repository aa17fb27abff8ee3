"""A simulated year's mail as a recipient's mail client and calendar see it.

The cycle is written to CONTRACT.md's shape (no wording, contact or supervisor keys), so the
defaults must carry every letter: one calendar event per deadline (one UID per cycle, agreement
and milestone) whose SEQUENCE rises with each letter and which the receipt cancels; one thread
per deadline (``References``/``In-Reply-To``); ``Auto-Submitted``; escalations addressed to a
supervisor by title and copied to the organisation; and in every letter the channel, the contact
and the reference, with no internal id or doubled verb in running text.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from collections import defaultdict
from email.message import EmailMessage
from pathlib import Path

import icalendar

from notifications.keys import thread_id
from tests.conftest import Cli
from tests.support.letters import DOUBLED_EN, DOUBLED_TH, running_text
from tests.support.smtp import RecordingHandler, smtp_server
from tests.support.year import write_inputs

IDS = re.compile(r"\bTH-\d\d\b|\bgroup-01\b|\bagency-000001\b|\b(propose_kpis|kpi_template|sar6)\b")


def test_one_event_and_one_thread_per_deadline(sqlite_cli: Cli, tmp_path: Path) -> None:
    cycle_file, scenario_file, doc = write_inputs(tmp_path)
    parties = {g["id"]: g for g in doc["groups"]} | {o["id"]: o for o in doc["organisations"]}
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        result = sqlite_cli(
            "simulate",
            str(cycle_file),
            "--scenario",
            str(scenario_file),
            "--keep-db",
            sqlite_cli.db_url,
            smtp=f"smtp://127.0.0.1:{port}",
        )
    assert result.code == 0, result.err
    assert len(handler.received) > 50
    events: dict[str, list[tuple[dt.datetime, int, str, str]]] = defaultdict(list)
    for item in handler.received:
        message = email.message_from_bytes(item.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        key = str(message["X-Rubrong-Key"])
        cycle, agreement, milestone, _due, kind = key.split("/")[:5]
        root = thread_id(cycle, None if agreement == "-" else agreement, milestone)
        assert message["Auto-Submitted"] == "auto-generated", key
        assert message["References"] == message["In-Reply-To"] == root, key
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content()
        assert "เลขที่อ้างอิง 2554/" in text and "Reference: 2554/" in text, key
        assert "ผู้ประสานงาน เจ้าหน้าที่ผู้รับผิดชอบ สำนักงาน ก.พ.ร." in text, key
        assert "Contact: the officer in charge at the OPDC" in text, key
        if kind in ("reminder", "overdue", "escalation"):
            assert "ช่องทางดำเนินการ" in text and "How to submit" in text, key
            assert "opdc@opdc.rubrong.example" in text, key  # the default channel
        for line in _running(message):
            assert not DOUBLED_TH.search(line) and not DOUBLED_EN.search(line), (key, line)
            assert not IDS.search(line), (key, line)
        if kind == "escalation":
            org = parties[agreement]
            assert message["Cc"].addresses[0].addr_spec == org["email"]
            assert item.rcpt_tos == [org["supervisor_email"], org["email"]]
            assert "เรียน ปลัดกระทรวง" in text and "Dear Permanent Secretary" in text
        for part in message.iter_attachments():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            calendar = icalendar.Calendar.from_ical(payload)
            (event,) = calendar.walk("VEVENT")
            method = str(calendar["METHOD"])
            assert part.get_content_type() == "text/calendar"
            assert part.get_param("method") == method
            assert str(event["UID"]) == root.strip("<>"), key
            sent = message["Date"].datetime
            events[root].append((sent, int(event.decoded("SEQUENCE")), method, kind))
    receipts_with_events = 0
    for root, letters in events.items():
        letters.sort()
        sequences = [sequence for _, sequence, _, _ in letters]
        assert sequences == sorted(set(sequences)), (root, letters)  # strictly rising
        methods = [method for _, _, method, _ in letters]
        assert "CANCEL" not in methods[:-1], (root, letters)  # nothing after a cancellation
        if letters[-1][3] == "receipt":
            assert methods[-1] == "CANCEL"
            receipts_with_events += int(len(letters) > 1)
    # Reminders then a receipt for one deadline: the same event, updated then cancelled.
    assert receipts_with_events >= 5
    assert max(len(letters) for letters in events.values()) >= 4  # 3 reminders + overdue


def _running(message: EmailMessage) -> list[str]:
    """The running text of a received letter (see ``tests.support.letters``)."""
    text = message.get_body(preferencelist=("plain",))
    markup = message.get_body(preferencelist=("html",))
    assert text is not None and markup is not None
    return running_text(text.get_content(), markup.get_content())
