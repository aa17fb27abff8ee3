"""``tick``: idempotent, ordered, and exactly CONTRACT.md's timer rules (cycle_2554.toml).

Most tests drive the real command (``tick --now``, ``fire --at``). Where the contract depends on
the clock at the moment an event is *entered* (receipts and the catch-up rule) the engine is
called with a virtual clock, since the CLI's clock is the wall clock.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CYCLE_2554, Cli, kpi_set
from workflow.config.validate import read_cycle_file
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import DAY_SECONDS, format_instant, parse_instant
from workflow.store.database import Database
from workflow.store.views import milestone_rows, outbox_rows
from workflow.usecases.fire import FireRequest, fire
from workflow.usecases.load import load_cycle
from workflow.usecases.tick import tick

KPIS = json.dumps(kpi_set(), ensure_ascii=False)
DEADLINE_SAR6 = "2011-05-01T00:00:00+07:00"  # sar6 is due Sat 30 Apr 2011


def signed(cli: Cli, *orgs: str) -> None:
    """Take provinces from drafted to signed (proposed and agreed on time)."""
    for org in orgs:
        for args in (
            ("propose_kpis", "--as", f"province:{org}", "--at", "2010-09-10", "--data", KPIS),
            ("agree", "--as", "committee", "--at", "2010-09-20"),
            ("sign", "--as", "admin", "--at", "2010-11-15"),
        ):
            result = cli("fire", org, *args)
            assert result.code == 0, result.err


def ticked(cli: Cli, now: str, *extra: str) -> dict[str, Any]:
    result = cli("tick", "--now", now, "--json", *extra)
    assert result.code == 0, result.err
    report: dict[str, Any] = result.json()
    return report


def snapshot(cli: Cli) -> tuple[Any, Any, Any]:
    """Everything a tick may change: milestones, outbox, history."""
    return (
        cli("milestones", "--json").json(),
        cli("outbox", "--json").json(),
        cli("history", "--json").json(),
    )


def mail_files(folder: Path) -> int:
    return len(list((folder / "mail" / "new").glob("*"))) if (folder / "mail").exists() else 0


def outbox_of(cli: Cli, milestone: str) -> list[dict[str, Any]]:
    return [row for row in cli("outbox", "--json").json() if row["milestone"] == milestone]


def statuses(cli: Cli, milestone: str) -> dict[str, dict[str, Any]]:
    return {
        row["agreement"]: row
        for row in cli("milestones", "--json").json()
        if row["milestone"] == milestone
    }


# --- idempotence and a clock that jumps --------------------------------------------------------


def test_the_same_time_again_and_an_earlier_time_change_nothing(loaded: Cli) -> None:
    cli = loaded
    signed(cli, "TH-50")
    first = ticked(cli, "2011-05-08", "--no-send")
    assert first["instants"] > 0 and first["enqueued"] > 0 and first["missed"] > 0
    before = snapshot(cli)
    again = ticked(cli, "2011-05-08", "--no-send")
    assert (again["instants"], again["enqueued"], again["missed"], again["closed"]) == (0, 0, 0, 0)
    assert snapshot(cli) == before
    back = ticked(cli, "2010-10-01", "--no-send")  # the clock jumps back seven months
    assert (back["instants"], back["enqueued"], back["missed"], back["closed"]) == (0, 0, 0, 0)
    assert snapshot(cli) == before
    assert cli("verify", "--json").json()["ok"] is True


def test_sending_twice_or_backwards_re_sends_nothing(sqlite_cli: Cli, tmp_path: Path) -> None:
    cli = sqlite_cli
    assert cli("load", str(CYCLE_2554)).code == 0
    ticked(cli, "2011-04-16T08:59", "--no-send")  # the year so far, enqueued (mostly stale)
    report = ticked(cli, "2011-04-16T09:00")  # sar6's 14-day reminders go out: Maildir ./mail
    assert report["enqueued"] == 93 and report["sent"] == 93
    assert mail_files(tmp_path) == 93
    for now in ("2011-04-16T09:00", "2011-04-16T10:00", "2011-04-01", "2011-04-16T09:00"):
        report = ticked(cli, now)
        assert (report["enqueued"], report["sent"]) == (0, 0)
    assert mail_files(tmp_path) == 93
    sent = [row for row in cli("outbox", "--json").json() if row["status"] == "sent"]
    assert len(sent) == 93 and all(row["attempts"] == 1 for row in sent)


# --- the order of things at one instant ---------------------------------------------------------


def test_an_event_at_the_same_instant_counts_first(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    assert cli("load", str(CYCLE_2554)).code == 0
    signed(cli, "TH-50", "TH-51")
    # TH-50 submits exactly when the 7-day reminders go; TH-51 exactly at the deadline.
    for org, at in (("TH-50", "2011-04-23T09:00"), ("TH-51", DEADLINE_SAR6)):
        assert cli("fire", org, "submit_sar6", "--as", f"province:{org}", "--at", at).code == 0
    ticked(cli, "2011-04-23T09:00", "--no-send")
    week = [row for row in outbox_of(cli, "sar6") if row["key"].endswith("/reminder/7")]
    assert len(week) == 92 and "TH-50" not in {row["agreement"] for row in week}
    assert "TH-51" in {row["agreement"] for row in week}  # it had not submitted yet
    ticked(cli, DEADLINE_SAR6, "--no-send")
    sar6 = statuses(cli, "sar6")
    assert sar6["TH-50"]["status"] == "met" and sar6["TH-50"]["late_business_days"] == 0
    # At 00:00 of the next day the deliverable is late (on time means before it), not missed.
    assert sar6["TH-51"]["status"] == "late" and sar6["TH-51"]["late_business_days"] == 0
    missed = Counter(row["status"] for row in sar6.values())
    assert missed == {"missed": 91, "met": 1, "late": 1}
    entries = [e for e in cli("history", "--json").json() if e["event"] == "missed"]
    assert {e["agreement"] for e in entries if e["data"]["milestone"] == "sar6"} == (
        set(sar6) - {"TH-50", "TH-51"}
    )


def test_the_deadline_skips_pending_reminders(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    assert cli("load", str(CYCLE_2554)).code == 0
    for now in ("2011-04-16T09:00", "2011-04-23T09:00", "2011-04-29T09:00"):
        ticked(cli, now, "--no-send")
    reminders = [row for row in outbox_of(cli, "sar6") if row["kind"] == "reminder"]
    assert len(reminders) == 3 * 93 and {row["status"] for row in reminders} == {"pending"}
    others = {
        r["key"]: r["status"] for r in cli("outbox", "--json").json() if r["milestone"] != "sar6"
    }
    report = ticked(cli, "2011-04-30T23:59:59", "--no-send")
    assert report["missed"] == 0  # one second before the deadline: nothing yet
    assert {row["status"] for row in outbox_of(cli, "sar6")} == {"pending"}
    report = ticked(cli, DEADLINE_SAR6, "--no-send")
    assert report["missed"] == 93
    assert {row["status"] for row in outbox_of(cli, "sar6")} == {"skipped"}
    after = {
        r["key"]: r["status"] for r in cli("outbox", "--json").json() if r["milestone"] != "sar6"
    }
    assert after == others  # other milestones' mail untouched


def test_missed_timer_entries_and_an_event_dated_before_the_deadline(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    assert cli("load", str(CYCLE_2554)).code == 0
    signed(cli, "TH-50")
    ticked(cli, DEADLINE_SAR6, "--no-send")
    states = {row["agreement"]: row["state"] for row in cli("status", "--json").json()}
    entries = [
        e
        for e in cli("history", "--json").json()
        if e["kind"] == "timer" and e["data"]["milestone"] == "sar6"
    ]
    assert len(entries) == 93
    assert [e["agreement"] for e in entries] == sorted(states)
    for entry in entries:
        assert (entry["event"], entry["actor"], entry["at"]) == ("missed", "system", DEADLINE_SAR6)
        assert entry["from"] == entry["to"] == states[entry["agreement"]]
        assert entry["data"] == {"milestone": "sar6", "due": "2011-04-30"}
    assert states["TH-50"] == "signed" and states["TH-51"] == "drafted"
    # TH-50's report was in fact received on 30 April: entered later, it counts as met.
    assert "sar6" in cli("status", "TH-50", "--json").json()[0]["overdue"]
    late_entry = ("submit_sar6", "--as", "province:TH-50", "--at", "2011-04-30T15:00")
    assert cli("fire", "TH-50", *late_entry).code == 0
    assert statuses(cli, "sar6")["TH-50"]["status"] == "met"
    assert statuses(cli, "sar6")["TH-50"]["late_business_days"] == 0
    assert "sar6" not in cli("status", "TH-50", "--json").json()[0]["overdue"]
    history = cli("history", "TH-50", "--json").json()
    assert [e["event"] for e in history if e["data"].get("milestone") == "sar6"] == ["missed"]
    assert history[-1]["event"] == "submit_sar6" and history[-1]["kind"] == "event"
    assert cli("verify", "--json").json()["ok"] is True


# --- late business days (OPDC's calendar, Bangkok) --------------------------------------------


@pytest.mark.parametrize(
    ("milestone", "event", "at", "days", "penalised"),
    [
        ("sar12", "submit_sar12", "2011-11-03T10:00", 3, "0.1500"),  # Thu 3 Nov 2011
        ("sar12", "submit_sar12", "2011-12-06T10:00", 25, "1.2500"),  # Tue 6 Dec 2011
        ("sar6", "submit_sar6", "2011-05-06T10:00", 4, None),  # Fri 6 May 2011
    ],
)
def test_late_business_days(
    sqlite_cli: Cli, milestone: str, event: str, at: str, days: int, penalised: str | None
) -> None:
    cli = sqlite_cli
    assert cli("load", str(CYCLE_2554)).code == 0
    signed(cli, "TH-50")
    ticked(cli, at, "--no-send")  # the deadline passed first: missed, then late
    assert statuses(cli, milestone)["TH-50"]["status"] == "missed"
    assert cli("fire", "TH-50", event, "--as", "province:TH-50", "--at", at).code == 0
    row = statuses(cli, milestone)["TH-50"]
    assert (row["status"], row["late_business_days"]) == ("late", days)
    assert row["met_at"] == format_instant(parse_instant(at))
    score = cli("score", "TH-50", "--json").json()
    if penalised is not None:
        assert score["late_business_days"] == days
        assert score["penalty"] == penalised


# --- arrivals, receipts and the catch-up rule (engine with a virtual clock) --------------------


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[tuple[Database, VirtualClock]]:
    db = Database(sqlite_url)
    db.create_schema()
    clock = VirtualClock(parse_instant("2010-09-01"))
    load_cycle(db, clock, read_cycle_file(CYCLE_2554), CYCLE_2554.read_text(encoding="utf-8"))
    yield db, clock
    db.dispose()


def act(db: Database, clock: VirtualClock, org: str, event: str, at: str, role: str = "") -> None:
    """Fire ``event`` at ``at`` with the virtual clock showing ``at`` (entered on time)."""
    clock.set(parse_instant(at))
    data = kpi_set() if event == "propose_kpis" else None
    fire(db, clock, FireRequest(org, event, role or f"province:{org}", None, data))


def sign_up(db: Database, clock: VirtualClock, org: str) -> None:
    act(db, clock, org, "propose_kpis", "2010-09-10")
    act(db, clock, org, "agree", "2010-09-20", "committee")
    act(db, clock, org, "sign", "2010-11-15", "admin")


def rows_of(db: Database, org: str, milestone: str) -> dict[str, dict[str, Any]]:
    with db.read() as conn:
        return {
            row["kind"] if row["kind"] != "reminder" else row["key"]: row
            for row in outbox_rows(conn)
            if row["agreement"] == org and row["milestone"] == milestone
        }


def test_arrival_skips_overdue_and_escalation_and_sends_a_receipt(
    engine: tuple[Database, VirtualClock],
) -> None:
    db, clock = engine
    sign_up(db, clock, "TH-50")
    for now in ("2011-05-01T09:00", "2011-05-07T09:00"):  # overdue, then escalation
        clock.set(parse_instant(now))
        tick(db, clock, clock.now())
    pending = rows_of(db, "TH-50", "sar6")
    assert pending["overdue"]["status"] == pending["escalation"]["status"] == "pending"
    act(db, clock, "TH-50", "submit_sar6", "2011-05-07T10:00")
    rows = rows_of(db, "TH-50", "sar6")
    assert rows["overdue"]["status"] == rows["escalation"]["status"] == "skipped"
    receipt = rows["receipt"]
    assert (receipt["status"], receipt["send_at"]) == ("pending", "2011-05-07T10:00:00+07:00")
    assert receipt["to"] == rows["overdue"]["to"]
    others = rows_of(db, "TH-51", "sar6")
    assert others["overdue"]["status"] == others["escalation"]["status"] == "pending"
    with db.read() as conn:
        (late,) = [r for r in milestone_rows(conn, None, ["TH-50"]) if r["milestone"] == "sar6"]
    assert (late["status"], late["late_business_days"]) == ("late", 4)


def test_a_receipt_for_an_event_entered_late_is_skipped(
    engine: tuple[Database, VirtualClock],
) -> None:
    db, clock = engine
    sign_up(db, clock, "TH-50")
    sign_up(db, clock, "TH-51")
    at = parse_instant("2011-04-20T10:00")
    for org, entered in (("TH-50", at + 3 * DAY_SECONDS), ("TH-51", at + 3 * DAY_SECONDS + 1)):
        clock.set(entered)  # entered 3 days later (still sent) or one second more (skipped)
        fire(db, clock, FireRequest(org, "submit_sar6", f"province:{org}", at, None))
    assert rows_of(db, "TH-50", "sar6")["receipt"]["status"] == "pending"
    assert rows_of(db, "TH-51", "sar6")["receipt"]["status"] == "skipped"
    assert rows_of(db, "TH-51", "sar6")["receipt"]["send_at"] == format_instant(at)


def test_a_receipt_through_the_cli_for_an_old_date_is_skipped(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    assert cli("load", str(CYCLE_2554)).code == 0
    signed(cli, "TH-50")  # entered now (wall clock) with 2010 dates: receipts are stale
    receipts = [row for row in cli("outbox", "--json").json() if row["kind"] == "receipt"]
    assert len(receipts) == 1 and receipts[0]["milestone"] == "propose_kpis"
    assert receipts[0]["status"] == "skipped"
    assert receipts[0]["send_at"] == "2010-09-10T00:00:00+07:00"
    report = ticked(cli, "2010-09-10T00:00")
    assert report["sent"] == 0
