"""The demo year's mail as its receivers get it (``make demo``: FY2554 with notices on
business days), read with Python's ``email`` package and ``icalendar``.

No reminder, overdue notice, escalation or digest is dated on a weekend or holiday of its
receiver; every deadline is one calendar event whose SEQUENCE rises letter by letter; every
letter carries its reference and the OPDC contact.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from collections import defaultdict
from email.message import EmailMessage
from pathlib import Path

import icalendar

from notifications.keys import thread_id
from tests.conftest import CYCLE_2554, ROOT, Cli
from workflow.config.validate import read_cycle_file
from workflow.rules.calendar import business_calendar
from workflow.rules.timeutil import BANGKOK

SCENARIO = ROOT / "scenarios" / "demo_2554.jsonl"
KEEP = 'non_business_days = "keep"'
PREVIOUS = 'non_business_days = "previous"'
TIMED = ("reminder", "overdue", "escalation")


def demo_cycle(tmp_path: Path) -> Path:
    """The cycle ``make demo`` runs: the bundled file with the policy the Makefile sets."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"s/^{KEEP}/{PREVIOUS}/" in makefile, "the demo's policy changed: update this test"
    text = CYCLE_2554.read_text(encoding="utf-8")
    assert text.count(f"\n{KEEP}") == 1
    path = tmp_path / "cycle_2554.toml"
    path.write_text(text.replace(f"\n{KEEP}", f"\n{PREVIOUS}"), encoding="utf-8")
    return path


def test_the_demo_year_writes_to_working_days(sqlite_cli: Cli, tmp_path: Path) -> None:
    cycle_file = demo_cycle(tmp_path)
    folder = tmp_path / "mail"
    result = sqlite_cli(
        "simulate",
        str(cycle_file),
        "--scenario",
        str(SCENARIO),
        "--keep-db",
        sqlite_cli.db_url,
        "--maildir",
        str(folder),
    )
    assert result.code == 0, result.err
    cycle = read_cycle_file(cycle_file)
    calendar = business_calendar(cycle.calendar)
    kinds = {party.id: party.kind for party in cycle.parties()}
    events: dict[str, list[tuple[float, int]]] = defaultdict(list)
    checked = 0
    for item in mailbox.Maildir(folder, create=False):
        message = email.message_from_bytes(item.as_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        key = str(message["X-Rubrong-Key"])
        cycle_id, agreement, milestone, _due, kind = key.split("/")[:5]
        sent = message["Date"].datetime.astimezone(BANGKOK)
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content()
        assert re.search(r"เลขที่อ้างอิง 2554/\S+", text), key
        assert "ผู้ประสานงาน" in text and "Contact:" in text, key
        if kind.removeprefix("digest-") in TIMED:
            if agreement == "-":  # OPDC's digest: the OPDC's calendar
                scope = cycle.calendar.receiver_scope
            else:
                scope = agreement if kinds[agreement] == "province" else ""
            assert calendar.is_business_day(sent.date(), scope), (key, sent.date())
            checked += 1
        for part in message.walk():
            if part.get_content_type() != "text/calendar":
                continue
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            (event,) = icalendar.Calendar.from_ical(payload).walk("VEVENT")
            root = thread_id(cycle_id, None if agreement == "-" else agreement, milestone)
            assert str(event["UID"]) == root.strip("<>"), key
            events[root].append((sent.timestamp(), int(event.decoded("SEQUENCE"))))
    assert checked > 500
    assert len(events) > 93
    for root, letters in events.items():
        sequences = [sequence for _, sequence in sorted(letters)]
        assert sequences == sorted(set(sequences)), (root, sequences)
