"""A whole simulated year against a real SMTP server: exactly the mail CONTRACT.md promises.

The expected mail is derived here, independently of the engine, from CONTRACT.md's rules
("Timers and mail") applied to the scenario (``tests.support.year``) and the due dates read
from the cycle file with ``tomllib``: reminders at 09:00 on due − 14/7/1 days, the overdue
notice at due + 1 and the escalation at due + 7, each to every agreement that has not met the
deliverable by that instant (an event at the same instant counts first); OPDC's own
deliverables give one ``digest`` per instant instead; every arrival of an organisation
deliverable gives a ``receipt``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from itertools import takewhile
from pathlib import Path
from typing import Any

import icalendar
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.dates import thai_date
from notifications.ics import cached_deadline_ics, deadline_ics
from notifications.message import mail_bytes
from tests.conftest import Cli
from tests.support.letters import outgoing
from tests.support.smtp import RecordingHandler, smtp_server
from tests.support.year import SCENARIO, write_inputs
from workflow.rules.timeutil import BANGKOK, parse_instant


@dataclass(frozen=True)
class Expected:
    """One mail as the contract's rules predict it."""

    kind: str  # reminder | overdue | escalation | receipt | digest
    agreement: str | None
    milestone: str
    notice: str | None  # what a digest stands for
    send_at: int
    to: str


def at_nine(day: dt.date) -> int:
    """09:00 Asia/Bangkok of ``day`` (the cycle's send_time)."""
    return int(dt.datetime(day.year, day.month, day.day, 9, 0, tzinfo=BANGKOK).timestamp())


def expected_mail(doc: dict[str, Any]) -> list[Expected]:
    """CONTRACT.md's rules applied by hand to SCENARIO and the cycle file."""
    rules = doc["notifications"]
    parties = {g["id"]: g for g in doc["groups"]} | {o["id"]: o for o in doc["organisations"]}
    met: dict[tuple[str, str], int] = {}  # (agreement, milestone) → arrival or waiver
    event_of = {m["event"]: m["id"] for m in doc["milestones"] if "event" in m}
    for at, agreement, event, _role, data in SCENARIO:
        target = data["milestone"] if event == "waive" and data else event_of.get(event)
        if target is not None:
            met.setdefault((agreement, target), parse_instant(at))
    found: list[Expected] = []
    for at, agreement, event, _role, _data in SCENARIO:
        milestone = next((m for m in doc["milestones"] if m.get("event") == event), None)
        if milestone is not None and milestone["actor"] == "organisation":
            to = parties[agreement]["email"]
            found.append(
                Expected("receipt", agreement, milestone["id"], None, parse_instant(at), to)
            )
    for milestone in doc["milestones"]:
        if milestone["kind"] != "deliverable" or "due" not in milestone:
            continue
        due = dt.date.fromisoformat(milestone["due"])
        notices = [
            ("reminder", at_nine(due - dt.timedelta(days=n)))
            for n in milestone.get("reminders", rules["reminders"])
        ]
        notices.append(("overdue", at_nine(due + dt.timedelta(days=rules["overdue_after"]))))
        notices.append(("escalation", at_nine(due + dt.timedelta(days=rules["escalate_after"]))))
        for notice, when in notices:
            unmet = [p for p in parties if met.get((p, milestone["id"]), when + 1) > when]
            if milestone["actor"] == "organisation":
                for party in unmet:
                    key = "supervisor_email" if notice == "escalation" else "email"
                    to = parties[party][key]
                    found.append(Expected(notice, party, milestone["id"], None, when, to))
            elif unmet:
                key = "opdc_supervisor_email" if notice == "escalation" else "opdc_email"
                to = doc["cycle"][key]
                found.append(Expected("digest", None, milestone["id"], notice, when, to))
    return found


def parse(data: bytes) -> EmailMessage:
    """A received message, decoded with the modern policy."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_simulated_year_sends_exactly_the_contracted_mail(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    cycle_file, scenario_file, doc = write_inputs(tmp_path)
    expected = expected_mail(doc)
    counts = Counter(item.kind for item in expected)
    # Counted by hand from SCENARIO (see the comments there), as a check on the derivation.
    assert counts == {
        "reminder": 44,
        "overdue": 10,
        "escalation": 7,
        "receipt": 16,
        "digest": 6,
    }, counts

    handler = RecordingHandler()
    with smtp_server(handler) as port:
        result = sqlite_cli(
            "simulate",
            str(cycle_file),
            "--scenario",
            str(scenario_file),
            "--keep-db",
            sqlite_cli.db_url,
            "--json",
            smtp=f"smtp://127.0.0.1:{port}",
        )
    assert result.code == 0, result.err
    summary = result.json()
    assert (summary["events"], summary["refused"]) == (len(SCENARIO), 0)
    assert summary["notifications"] == dict(counts)

    outbox = {row["key"]: row for row in sqlite_cli("outbox", "--json").json()}
    assert len(outbox) == len(expected)
    assert {row["status"] for row in outbox.values()} == {"sent"}
    assert all(row["attempts"] == 1 for row in outbox.values())

    messages = [parse(item.content) for item in handler.received]
    ids = [str(message["Message-ID"]) for message in messages]
    assert len(ids) == len(set(ids)) == len(expected)  # every mail once, Message-ID unique
    assert set(ids) == {row["message_id"] for row in outbox.values()}

    dues = {m["id"]: dt.date.fromisoformat(m["due"]) for m in doc["milestones"] if "due" in m}
    got: list[Expected] = []
    for item, message in zip(handler.received, messages, strict=True):
        row = outbox[str(message["X-Rubrong-Key"])]
        assert message["Message-ID"] == row["message_id"]
        assert message["Subject"] == row["subject"]  # RFC 2047 Thai decodes back exactly
        assert message["Subject"].startswith("[คำรับรองฯ 2554]")
        assert message["To"].addresses[0].addr_spec == row["to"] == item.rcpt_tos[0]
        sent_at = message["Date"].datetime
        assert sent_at.utcoffset() == dt.timedelta(hours=7)
        assert int(sent_at.timestamp()) == parse_instant(row["send_at"])
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert text is not None and html is not None
        body = text.get_content()
        assert "เรียน" in body and ("Dear" in body)
        assert body.index("เรียน") < body.index("Dear")  # Thai first, English beneath
        assert "เรียน" in html.get_content()
        kind = row["kind"]
        milestone = row["milestone"]
        notice = row["key"].split("/")[4].removeprefix("digest-") if kind == "digest" else None
        if kind in ("reminder", "overdue", "escalation") or notice is not None:
            assert thai_date(dues[milestone]) in body  # e.g. "30 เมษายน 2554"
        attachments = list(message.iter_attachments())
        if kind in ("reminder", "overdue"):
            (ics,) = attachments
            assert ics.get_filename() == "deadline.ics"
            payload = ics.get_payload(decode=True)
            assert isinstance(payload, bytes)
            (event,) = icalendar.Calendar.from_ical(payload).walk("VEVENT")
            assert event.decoded("DTSTART") == dues[milestone]
        elif kind == "receipt" and milestone in dues:  # the receipt cancels the deadline's event
            (ics,) = attachments
            payload = ics.get_payload(decode=True)
            assert isinstance(payload, bytes) and b"METHOD:CANCEL" in payload
        elif kind in ("escalation", "receipt"):
            assert attachments == []
        got.append(
            Expected(
                kind, row["agreement"], milestone, notice, parse_instant(row["send_at"]), row["to"]
            )
        )
    assert Counter(got) == Counter(expected)


# Thai letters and marks, spaces, ASCII punctuation: what subjects and names are made of.
HEADER_TEXT = st.text(
    st.sampled_from(list("กขคงจญณดตนบปผพมยรลวศสหอะาำิีึืุูเแโใไ่้๊๋็์ๆฯ ๐๑๒ ()[]:/-.,'\"abcXYZ019")),
    min_size=1,
    max_size=160,
).filter(lambda text: text.strip() == text and "  " not in text)


@settings(max_examples=150, deadline=None)
@given(subject=HEADER_TEXT, name=HEADER_TEXT)
def test_thai_subjects_and_names_decode_back_exactly(subject: str, name: str) -> None:
    """Whatever the words, a client decodes exactly the subject and display name we meant."""
    base = outgoing(1)
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    mail = dataclasses.replace(
        base,
        sender=f'"{quoted}" <noreply@opdc.go.th>',
        rendered=dataclasses.replace(base.rendered, subject=subject),
    )
    for linesep in ("\r\n", "\n"):
        raw = mail_bytes(mail, linesep=linesep)
        head = raw.split(linesep.encode() * 2)[0].splitlines()
        assert raw.isascii() and all(len(line) <= 998 for line in head)
        start = next(i for i, line in enumerate(head) if line.startswith(b"Subject:"))
        folded = takewhile(lambda line: line[:1] == b" ", head[start + 1 :])
        subject_lines = [head[start], *folded]
        assert all(len(line) <= 76 for line in subject_lines)  # RFC 2047 section 2
        message = parse(raw)
        assert message["Subject"] == subject
        (sender,) = message["From"].addresses
        assert (sender.display_name, sender.addr_spec) == (name, "noreply@opdc.go.th")
        assert message["Message-ID"] == mail.message_id
        assert message.defects == []


def test_the_cached_ics_is_the_ics() -> None:
    """Dispatch builds one .ics per deadline and clock reading; each equals a fresh one."""
    now = parse_instant("2011-04-23T09:00")
    stamp = dt.datetime.fromtimestamp(now, tz=BANGKOK)
    for uid in ("2554.TH-50.sar6.2011-04-30.reminder.7@rubrong", "x" * 70, "y" * 90, "a;b,c@x"):
        for summary in ("ส่งรายงาน SAR 6 / SAR 6", "ส่งรายละเอียดตัวชี้วัด / KPI template"):
            due = dt.date(2011, 4, 30)
            expected = deadline_ics(
                uid=uid, summary=summary, description="[คำรับรองฯ] x", due=due, stamp=stamp
            )
            cached = cached_deadline_ics(
                uid=uid, summary=summary, description="[คำรับรองฯ] x", due=due, stamp=stamp
            )
            assert cached == expected
