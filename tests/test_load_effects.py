"""``load --dry-run`` lists the effects of a changed cycle file, writes nothing, and its effects
are exactly what ``--apply-changes`` followed by a tick at the same instant then does.

FY2554, ticked to 16 April 2011 09:00 (the SAR 6 reminder 14 days before its 30 April
deadline), then sar6 moved later, earlier (already past), moved away and back, an organisation
added and one removed; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.conftest import CYCLE_2554, Cli, kpi_set
from tests.support.cycles import BUENG_KAN, GROUP_NE1, TEXT, without_organisation, write
from tests.support.validate import edit
from workflow.store.database import Database

TICK = "2011-04-16T09:00:00+07:00"
SAR6 = 'due = "2011-04-30"'
PROPOSAL = json.dumps(kpi_set(), ensure_ascii=False)


def everything(cli: Cli) -> dict[str, Any]:
    """What a dry run must leave alone: the printed views and the raw bookkeeping rows."""
    state = {
        name: cli(name, "--json").json() for name in ("status", "milestones", "history", "outbox")
    }
    db = Database(cli.db_url)
    try:
        with db.read() as conn:
            for table, order in (
                ("cycles", "id"),
                ("cycle_versions", "version"),
                ("cycle_milestones", "id"),
                ("organisations", "id"),
                ("timers_done", "key"),
                ("agreements", "pk"),
            ):
                rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))
                state[table] = [tuple(row) for row in rows]
    finally:
        db.dispose()
    return state


def observed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Effects and letters as seen in ``milestones`` and ``outbox`` before and after."""
    old = {(r["agreement"], r["milestone"]): r for r in before["milestones"]}
    effects: list[dict[str, Any]] = []
    for row in after["milestones"]:
        was = old.get((row["agreement"], row["milestone"]))
        found: dict[str, Any] = {"agreement": row["agreement"], "milestone": row["milestone"]}
        if was is None:
            found["created"] = True
            found["status"] = {"from": None, "to": row["status"]}
        for key in ("due", "status", "late_business_days"):
            if was is not None and was[key] != row[key]:
                found[key] = {"from": was[key], "to": row[key]}
        if len(found) > 2:
            effects.append(found)
    letters = {r["key"]: r for r in before["outbox"]}
    withdrawn = [
        (r["key"], letters[r["key"]]["status"], r["status"])
        for r in after["outbox"]
        if r["key"] in letters and letters[r["key"]]["status"] != r["status"]
    ]
    added = [(r["key"], r["status"]) for r in after["outbox"] if r["key"] not in letters]
    return {"effects": key_sorted(effects), "withdrawn": sorted(withdrawn), "added": sorted(added)}


def reported(dry: dict[str, Any]) -> dict[str, Any]:
    """The dry run's document, reduced to what ``observed`` can see."""
    keys = ("agreement", "milestone", "created", "due", "status", "late_business_days")
    effects = [
        {key: item[key] for key in keys if key in item}
        for item in dry["effects"]
        if set(item) & {"created", "due", "status", "late_business_days"}
    ]
    letters = dry["letters"]
    return {
        "effects": key_sorted(effects),
        "withdrawn": sorted((r["key"], r["from"], r["status"]) for r in letters["withdrawn"]),
        "added": sorted((r["key"], r["status"]) for r in letters["added"]),
    }


def key_sorted(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: (item["agreement"], item["milestone"]))


def dry_then_apply(cli: Cli, path: str, tick_at: str = TICK) -> dict[str, Any]:
    """Dry run (nothing written), then apply and tick at the same instant: the same effects."""
    before = everything(cli)
    dry = cli("load", path, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    document = dry.json()
    assert everything(cli) == before
    human = cli("load", path, "--dry-run")
    assert human.code == 0, human.err
    assert everything(cli) == before
    applied = cli("load", path, "--apply-changes")
    assert applied.code == 0, applied.err
    assert cli("tick", "--now", tick_at, "--no-send").code == 0
    assert reported(document) == observed(before, everything(cli))
    assert cli("verify").code == 0
    return {"json": document, "text": human.out}


def ticked(cli: Cli) -> Cli:
    assert cli("load", str(CYCLE_2554)).code == 0
    result = cli("tick", "--now", TICK, "--no-send")
    assert result.code == 0, result.err
    return cli


def test_moved_later_deadline(cli: Cli, tmp_path: Path) -> None:
    ticked(cli)
    path = write(tmp_path, edit(TEXT, SAR6, 'due = "2011-05-07"'))
    agreements = {row["agreement"] for row in cli("status", "--json").json()}
    assert len(agreements) == 93
    found = dry_then_apply(cli, path)
    document = found["json"]
    assert document["changes"] == [
        {"op": "~", "path": "milestones.sar6.due", "old": "2011-04-30", "new": "2011-05-07"}
    ]
    effects = document["effects"]
    assert {item["agreement"] for item in effects} == agreements
    assert len(effects) == 93
    for item in effects:
        assert item["milestone"] == "sar6"
        assert item["due"] == {"from": "2011-04-30", "to": "2011-05-07"}
        assert "status" not in item
    # The pending 14-day reminders about 30 April are withdrawn; none are due yet for 7 May.
    withdrawn = document["letters"]["withdrawn"]
    assert len(withdrawn) == 93
    assert {r["key"].split("/", 2)[2] for r in withdrawn} == {"sar6/2011-04-30/reminder/14"}
    assert {(r["from"], r["status"]) for r in withdrawn} == {("pending", "skipped")}
    # One correction to each organisation, sent as of the latest processed instant.
    added = document["letters"]["added"]
    assert {r["agreement"] for r in added} == agreements and len(added) == 93
    assert {r["key"].split("/", 2)[2] for r in added} == {"sar6/2011-05-07/correction/2"}
    assert {(r["kind"], r["send_at"], r["status"]) for r in added} == {
        ("correction", TICK, "pending")
    }
    assert document["rejudged_until"] == TICK
    assert [(s["what"], s["at"]) for s in document["scheduled"]][:2] == [
        ("reminder", "2011-04-23T09:00:00+07:00"),
        ("reminder", "2011-04-30T09:00:00+07:00"),
    ]
    lines = [line.strip() for line in found["text"].splitlines()]
    assert lines[0] == '~ milestones.sar6.due: "2011-04-30" → "2011-05-07"'
    assert "TH-50 sar6: due 2011-04-30 → 2011-05-07" in lines
    assert "letters withdrawn (93):" in lines and "letters added (93):" in lines
    # Applied: the reminders of the new date come when their time does, under new keys.
    assert cli("tick", "--now", "2011-04-23T09:00", "--no-send").code == 0
    rows = [r for r in cli("outbox", "--json").json() if r["agreement"] == "TH-50"]
    sar6 = {r["key"].split("/", 3)[3]: r["status"] for r in rows if r["milestone"] == "sar6"}
    assert sar6 == {
        "2011-04-30/reminder/14": "skipped",
        "2011-05-07/correction/2": "pending",
        "2011-05-07/reminder/14": "pending",
    }


def test_moved_earlier_past_the_processed_instant(cli: Cli, tmp_path: Path) -> None:
    assert cli("load", str(CYCLE_2554)).code == 0
    for event, role, at in (
        ("propose_kpis", "province:TH-50", "2010-09-10"),
        ("agree", "committee", "2010-09-20"),
        ("sign", "admin", "2010-11-15"),
        ("submit_sar6", "province:TH-50", "2011-04-15T10:00"),
    ):
        data = ["--data", PROPOSAL] if event == "propose_kpis" else []
        fired = cli("fire", "TH-50", event, "--as", role, "--at", at, *data)
        assert fired.code == 0, (event, fired.err)
    assert cli("tick", "--now", TICK, "--no-send").code == 0
    # 14 April: its deadline (15 April 00:00) is before the latest processed instant.
    path = write(tmp_path, edit(TEXT, SAR6, 'due = "2011-04-14"'))
    document = dry_then_apply(cli, path)["json"]
    effects = {item["agreement"]: item for item in document["effects"]}
    assert len(effects) == 93
    assert effects["TH-50"]["status"] == {"from": "met", "to": "late"}
    for agreement, item in effects.items():
        assert item["due"] == {"from": "2011-04-30", "to": "2011-04-14"}
        if agreement != "TH-50":
            # Reported as the status the next tick sets, as apply + tick really does.
            assert item["status"] == {"from": "pending", "to": "missed"}
            assert "next tick" in item["note"]
    added = document["letters"]["added"]
    overdue = {r["agreement"]: r["status"] for r in added if r["kind"] == "overdue"}
    assert len(overdue) == 93
    assert overdue.pop("TH-50") == "skipped"  # arrived after the notice's instant
    assert set(overdue.values()) == {"pending"}
    reminders = {r["status"] for r in added if r["kind"] == "reminder"}
    assert reminders == {"skipped"}  # stale, or withdrawn at the (new, past) deadline
    assert len(document["letters"]["withdrawn"]) == 92  # TH-50 had no 14-day reminder
    missed = [
        entry
        for entry in cli("history", "TH-51", "--json").json()
        if entry["event"] == "missed" and entry["data"]["milestone"] == "sar6"
    ]
    assert [entry["data"]["due"] for entry in missed] == ["2011-04-14"]


def test_moved_away_and_back_sends_nothing_twice(cli: Cli, tmp_path: Path) -> None:
    assert cli("load", str(CYCLE_2554)).code == 0
    tick = "2011-05-02T00:00:00+07:00"
    sent = cli("tick", "--now", tick)  # mail to ./mail/: the overdue notices go out
    assert sent.code == 0, sent.err

    def sent_overdue() -> set[str]:
        return {
            r["key"]
            for r in cli("outbox", "--json").json()
            if r["milestone"] == "sar6" and r["kind"] == "overdue" and r["status"] == "sent"
        }

    notices = sent_overdue()
    assert len(notices) == 93
    later = write(tmp_path, edit(TEXT, SAR6, 'due = "2011-05-31"'), "later.toml")
    found = dry_then_apply(cli, later, tick)["json"]
    assert {item["status"]["to"] for item in found["effects"]} == {"pending"}
    assert found["letters"]["withdrawn"] == []  # sent ones stay sent
    assert {r["key"].split("/", 3)[3] for r in found["letters"]["added"]} == {
        "2011-05-31/correction/2"
    }
    # Back to 30 April: its deadline was processed once; it is judged again, mail is not resent.
    found = dry_then_apply(cli, str(CYCLE_2554), tick)["json"]
    assert len(found["effects"]) == 93
    for item in found["effects"]:
        assert item["due"] == {"from": "2011-05-31", "to": "2011-04-30"}
        assert item["status"] == {"from": "pending", "to": "missed"}
    # Only the correction back to 30 April is new: no overdue notice is enqueued again, and
    # the correction to 31 May, not sent yet, is withdrawn.
    withdrawn = found["letters"]["withdrawn"]
    assert {r["key"].split("/", 3)[3] for r in withdrawn} == {"2011-05-31/correction/2"}
    assert len(withdrawn) == 93
    added = found["letters"]["added"]
    assert len(added) == 93 and {r["kind"] for r in added} == {"correction"}
    assert {r["key"].split("/", 3)[3] for r in added} == {"2011-04-30/correction/3"}
    assert sent_overdue() == notices
    missed = [
        entry["data"]["due"]
        for entry in cli("history", "TH-51", "--json").json()
        if entry["event"] == "missed" and entry["data"]["milestone"] == "sar6"
    ]
    assert missed == ["2011-04-30", "2011-04-30"]


def test_organisation_added_gets_waived_deliverables(cli: Cli, tmp_path: Path) -> None:
    ticked(cli)
    text = edit(TEXT, GROUP_NE1, GROUP_NE1.replace('"TH-39"]', '"TH-39", "TH-38"]')) + BUENG_KAN
    document = dry_then_apply(cli, write(tmp_path, text))["json"]
    assert {item["agreement"] for item in document["effects"]} == {"TH-38"}
    created = {item["milestone"]: item for item in document["effects"]}
    assert len(created) == 13
    assert all(item["created"] and item["status"]["from"] is None for item in created.values())
    waived = {m for m, item in created.items() if item["status"]["to"] == "waived"}
    assert waived == {"propose_kpis", "sign", "kpi_template", "kpi_audit"}
    assert {item["note"] for m, item in created.items() if m in waived} == {
        "joined after the deadline"
    }
    assert created["sar6"]["status"]["to"] == "pending"
    assert created["change_requests"]["status"]["to"] == "closed"
    assert document["letters"] == {"withdrawn": [], "added": []}


def test_removed_organisation_stops_moving(cli: Cli, tmp_path: Path) -> None:
    ticked(cli)
    document = dry_then_apply(cli, write(tmp_path, without_organisation(TEXT, "TH-39")))["json"]
    effects = document["effects"]
    assert {item["agreement"] for item in effects} == {"TH-39"}
    moving = {item["milestone"] for item in effects}
    assert all(item["moving"] == {"from": True, "to": False} for item in effects)
    assert all("status" not in item and "due" not in item for item in effects)
    assert {"sar6", "esar9", "sar12", "kpi_template"} <= moving  # pending or missed
    assert "negotiation" not in moving  # already closed
    withdrawn = document["letters"]["withdrawn"]
    assert [r["key"] for r in withdrawn] == ["2554/TH-39/sar6/2011-04-30/reminder/14"]
    assert document["letters"]["added"] == []


def test_same_content_and_first_load(cli: Cli) -> None:
    first = cli("load", str(CYCLE_2554), "--dry-run", "--json")
    assert first.code == 0, first.err
    document = first.json()
    assert (document["action"], document["agreements"]) == ("would_create", 93)
    assert (document["changes"], document["effects"]) == ([], [])
    assert cli("status").code == 2  # nothing loaded
    ticked(cli)
    before = everything(cli)
    again = cli("load", str(CYCLE_2554), "--dry-run", "--json")
    assert again.code == 0, again.err
    document = again.json()
    assert document["action"] == "unchanged"
    assert (document["changes"], document["effects"]) == ([], [])
    assert document["letters"] == {"withdrawn": [], "added": []}
    assert everything(cli) == before
