"""A deadline moved by ``load --apply-changes`` reaches the people who owe it.

The dry run lists, per agreement, the moved deadline and the correction letters it would send;
applying it enqueues one correction per organisation that still owes the deliverable, which the
next tick sends with the deadline's calendar event moved (same UID, higher SEQUENCE); applying
the same file again sends nothing more, and nothing already sent for a deadline is sent again.
Run through the real CLI on SQLite and PostgreSQL, mail read back from the Maildir.
"""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar

from notifications.keys import thread_id
from tests.conftest import CYCLE_2554, Cli, kpi_set

SAR6_LINE = 'due = "2011-04-30"'


def moved_cycle(tmp_path: Path, due: str, name: str = "moved.toml") -> Path:
    """FY2554 with sar6 due on ``due`` instead of 30 April 2011."""
    text = CYCLE_2554.read_text(encoding="utf-8")
    assert text.count(SAR6_LINE) == 1
    path = tmp_path / name
    path.write_text(text.replace(SAR6_LINE, f'due = "{due}"'), encoding="utf-8")
    return path


def ok(result: Any) -> Any:
    assert result.code == 0, result.err
    return result


def corrections(cli: Cli) -> list[dict[str, Any]]:
    rows = ok(cli("outbox", "--json")).json()
    return [row for row in rows if row["kind"] == "correction"]


def messages(folder: Path) -> list[EmailMessage]:
    found = []
    for item in mailbox.Maildir(folder, create=False):
        message = email.message_from_bytes(item.as_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def calendar_of(message: EmailMessage) -> tuple[str, int, str]:
    """The letter's calendar event: UID, SEQUENCE and start date (ISO)."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            (event,) = icalendar.Calendar.from_ical(payload).walk("VEVENT")
            start = event.decoded("DTSTART").isoformat()
            return str(event["UID"]), int(event.decoded("SEQUENCE")), start
    raise AssertionError(f"no calendar file in {message['X-Rubrong-Key']}")


def test_moving_sar6_sends_one_correction_per_organisation(loaded: Cli, tmp_path: Path) -> None:
    cli = loaded
    kpis = json.dumps(kpi_set())
    for event, actor, at, data in (
        ("propose_kpis", "province:TH-50", "2010-09-10T10:00", kpis),
        ("agree", "committee", "2010-09-20T10:00", None),
        ("sign", "admin", "2010-11-26T10:00", None),
        ("submit_sar6", "province:TH-50", "2011-04-12T10:00", None),
    ):
        extra = ("--data", data) if data else ()
        ok(cli("fire", "TH-50", event, "--as", actor, "--at", at, *extra))
    ok(cli("tick", "--now", "2011-04-15T10:00"))  # the months before: recorded, not sent
    ok(cli("tick", "--now", "2011-04-16T09:05"))  # the 14-day sar6 reminders are sent
    before = {m["Message-ID"]: m for m in messages(tmp_path / "mail")}
    moved = moved_cycle(tmp_path, "2011-05-09")

    dry = ok(cli("load", str(moved), "--dry-run", "--json")).json()
    sar6 = [e for e in dry["effects"] if e["milestone"] == "sar6"]
    assert len(sar6) == 93
    assert all(e["due"] == {"from": "2011-04-30", "to": "2011-05-09"} for e in sar6)
    planned = [x for x in dry["letters"]["added"] if x["kind"] == "correction"]
    # Every organisation but TH-50, whose report already arrived.
    assert len(planned) == 92 and "TH-50" not in {x["agreement"] for x in planned}
    assert corrections(cli) == [], "a dry run changes nothing"

    ok(cli("load", str(moved), "--apply-changes"))
    queued = corrections(cli)
    assert sorted(x["key"] for x in queued) == sorted(x["key"] for x in planned)
    assert {x["send_at"] for x in queued} == {"2011-04-16T09:05:00+07:00"}
    assert {x["status"] for x in queued} == {"pending"}

    ok(cli("tick", "--now", "2011-04-16T09:10"))
    assert {x["status"] for x in corrections(cli)} == {"sent"}
    new = [m for m in messages(tmp_path / "mail") if m["Message-ID"] not in before]
    letters = [m for m in new if "/correction/" in str(m["X-Rubrong-Key"])]
    assert len(letters) == 92 and len({m["To"] for m in letters}) == 92

    lampang = next(m for m in letters if "/TH-52/" in str(m["X-Rubrong-Key"]))
    body = lampang.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "30 เมษายน 2554" in text and "9 พฤษภาคม 2554" in text
    assert "30 April 2011" in text and "9 May 2011" in text
    assert "เลขที่อ้างอิง 2554/TH-52/sar6/C" in text
    root = thread_id("2554", "TH-52", "sar6")
    assert lampang["References"] == root
    uid, sequence, start = calendar_of(lampang)
    assert uid == root.strip("<>")
    assert start == "2011-05-09"
    reminder = next(
        m
        for m in before.values()
        if str(m["X-Rubrong-Key"]).startswith("2554/TH-52/sar6/2011-04-30/reminder/")
    )
    earlier_uid, earlier_sequence, earlier_start = calendar_of(reminder)
    assert (earlier_uid, earlier_start) == (uid, "2011-04-30")
    assert sequence > earlier_sequence

    # The same file again: nothing changes and nothing more is sent.
    ok(cli("load", str(moved), "--apply-changes"))
    assert len(corrections(cli)) == 92
    ok(cli("tick", "--now", "2011-04-16T09:15"))
    assert len(messages(tmp_path / "mail")) == len(before) + len(new)


def test_a_second_move_is_announced_and_no_notice_is_sent_twice(
    loaded: Cli, tmp_path: Path
) -> None:
    cli = loaded
    ok(cli("tick", "--now", "2011-04-15T10:00"))
    ok(cli("tick", "--now", "2011-04-16T09:05"))  # the 14-day reminder for 30 April
    ok(cli("load", str(moved_cycle(tmp_path, "2011-05-09", "a.toml")), "--apply-changes"))
    ok(cli("tick", "--now", "2011-04-16T09:10"))  # the correction
    ok(cli("tick", "--now", "2011-04-25T10:00"))  # the 14-day reminder for 9 May
    back = moved_cycle(tmp_path, "2011-04-30", "b.toml")  # back to the published date
    ok(cli("load", str(back), "--apply-changes"))
    ok(cli("tick", "--now", "2011-04-29T10:00"))
    rows = [r for r in ok(cli("outbox", "--json")).json() if r["agreement"] == "TH-52"]
    sar6 = [r for r in rows if r["milestone"] == "sar6"]
    fixes = sorted(r["key"].split("/", 3)[3] for r in sar6 if r["kind"] == "correction")
    assert fixes == ["2011-04-30/correction/3", "2011-05-09/correction/2"]
    keys = [r["key"] for r in sar6]
    assert len(keys) == len(set(keys))
    # The 14-day reminder for 30 April went out before the moves; it is not sent again.
    first = [r for r in sar6 if r["key"].endswith("2011-04-30/reminder/14")]
    assert len(first) == 1
    sent = [r for r in messages(tmp_path / "mail") if "/TH-52/sar6/" in str(r["X-Rubrong-Key"])]
    ids = [str(m["Message-ID"]) for m in sent]
    assert len(ids) == len(set(ids))


def test_no_correction_before_the_first_tick_nor_for_opdc_deadlines(
    loaded: Cli, tmp_path: Path
) -> None:
    cli = loaded
    moved = moved_cycle(tmp_path, "2011-05-09")
    ok(cli("load", str(moved), "--apply-changes"))
    assert corrections(cli) == []  # nothing was sent yet: the reminders carry the new date
    ok(cli("tick", "--now", "2011-01-10T10:00"))
    text = moved.read_text(encoding="utf-8")
    audit = text.index('id = "kpi_audit"')
    due = text.index("due = ", audit)
    end = text.index("\n", due)
    shifted = text[:due] + 'due = "2011-03-15"' + text[end:]
    path = tmp_path / "audit.toml"
    path.write_text(shifted, encoding="utf-8")
    result = ok(cli("load", str(path), "--apply-changes"))
    assert "kpi_audit" in result.out + result.err
    assert corrections(cli) == [], "OPDC's own deadline: no letter to the provinces"
    doc = json.loads(ok(cli("history", "--json")).out)
    assert doc[-1]["event"] == "apply_changes"
