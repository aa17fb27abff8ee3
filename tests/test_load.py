"""``rubrong load``: first load, the same content again, changed content, ``--dry-run`` and
``--apply-changes`` (organisations added and removed, due dates moved), on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import CYCLE_2554, Cli, kpi_set
from tests.support.cycles import BUENG_KAN, GROUP_NE1, TEXT, without_organisation, write
from tests.support.validate import edit

PROPOSAL = json.dumps(kpi_set(), ensure_ascii=False)


def snapshot(cli: Cli) -> dict[str, Any]:
    """Everything ``load`` must leave alone when it changes nothing."""
    return {
        "status": cli("status", "--json").json(),
        "milestones": cli("milestones", "--json").json(),
        "history": cli("history", "--json").json(),
    }


def by_id(rows: list[dict[str, Any]], key: str = "agreement") -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in rows}


def statuses(cli: Cli, agreement: str) -> dict[str, str]:
    rows = cli("milestones", agreement, "--json").json()
    return {row["milestone"]: row["status"] for row in rows}


def test_first_load_creates_93_agreements(cli: Cli) -> None:
    result = cli("load", str(CYCLE_2554))
    assert result.code == 0, result.err
    assert "93 agreements" in result.err
    rows = cli("status", "--json").json()
    assert len(rows) == 93
    groups = [row for row in rows if row["kind"] == "group"]
    provinces = [row for row in rows if row["kind"] == "province"]
    assert len(groups) == 18 and len(provinces) == 75
    assert all(row["group"] is None for row in groups)
    assert all(row["state"] == "drafted" for row in rows)
    rows_by_id = by_id(rows)
    assert rows_by_id["TH-50"]["group"] == "north-upper-1"
    assert rows_by_id["TH-39"]["group"] == "northeast-upper-1"
    assert rows_by_id["north-upper-1"]["name_th"] == "ภาคเหนือตอนบน 1"
    assert {row["group"] for row in provinces} == {row["agreement"] for row in groups}
    assert rows_by_id["TH-50"]["next_due"] == {"milestone": "propose_kpis", "due": "2010-09-13"}
    milestones = cli("milestones", "--json").json()
    assert len(milestones) == 93 * 13
    for row in milestones:
        expected = "pending" if row["kind"] == "deliverable" else "open"
        assert row["status"] == expected, row
    assert cli("history", "--json").json() == []


def test_same_file_again_changes_nothing(loaded: Cli, tmp_path: Path) -> None:
    before = snapshot(loaded)
    again = loaded("load", str(CYCLE_2554))
    assert again.code == 0, again.err
    assert again.out == ""
    assert "nothing changed" in again.err
    # Only comments and layout differ: the same parsed content.
    reworded = TEXT.replace("# config:", "#  configured:").replace(" = ", "  =  ")
    reworded = "# a new leading comment\n\n" + reworded.replace("\n", "\n\n", 3) + "\n# end\n"
    assert reworded != TEXT
    same = loaded("load", write(tmp_path, reworded))
    assert same.code == 0, same.err
    assert "nothing changed" in same.err
    # Reordered organisations are the same content too (they are keyed by id).
    first = TEXT.index("[[organisations]]")
    blocks = TEXT[first:].split("\n[[organisations]]")
    shuffled = TEXT[:first] + "\n[[organisations]]".join([blocks[0], *reversed(blocks[1:])])
    same = loaded("load", write(tmp_path, shuffled, "shuffled.toml"))
    assert same.code == 0, same.err
    # --apply-changes with nothing to apply records nothing either.
    same = loaded("load", str(CYCLE_2554), "--apply-changes")
    assert same.code == 0, same.err
    assert snapshot(loaded) == before
    assert before["history"] == []


def test_changed_content_is_refused_and_changes_nothing(loaded: Cli, tmp_path: Path) -> None:
    before = snapshot(loaded)
    text = edit(TEXT, 'email = "governor@th-50.rubrong.example"', 'email = "gov@th-50.example"')
    text = edit(text, 'due = "2011-04-30"', 'due = "2011-05-06"')
    path = write(tmp_path, text)
    refused = loaded("load", path)
    assert refused.code == 2
    assert refused.out.splitlines() == [
        '~ milestones.sar6.due: "2011-04-30" → "2011-05-06"',
        '~ organisations.TH-50.email: "governor@th-50.rubrong.example" → "gov@th-50.example"',
    ]
    assert "--apply-changes" in refused.err
    assert refused.err.count("\n") == 1
    assert snapshot(loaded) == before
    # --dry-run: the same differences, then their effects; exit 0, still nothing changed.
    dry = loaded("load", path, "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out.startswith(refused.out)
    effects = dry.out[len(refused.out) :].splitlines()
    assert effects[0] == "effects (93; no tick has run yet):"
    assert "  TH-50 sar6: due 2011-04-30 → 2011-05-06" in effects
    assert "dry run" in dry.err
    assert snapshot(loaded) == before


def test_dry_run_of_a_first_load_creates_nothing(cli: Cli) -> None:
    dry = cli("load", str(CYCLE_2554), "--dry-run")
    assert dry.code == 0, dry.err
    assert "93 agreements" in dry.err
    status = cli("status", "--json")
    assert status.code == 2 and "no cycle is loaded" in status.err


def test_apply_changes_records_one_config_entry(loaded: Cli, tmp_path: Path) -> None:
    fired = loaded(
        "fire",
        "TH-50",
        "propose_kpis",
        "--as",
        "province:TH-50",
        "--at",
        "2010-09-10",
        "--data",
        PROPOSAL,
    )
    assert fired.code == 0, fired.err
    before = snapshot(loaded)
    text = edit(TEXT, 'email = "governor@th-50.rubrong.example"', 'email = "gov@th-50.example"')
    text = edit(text, 'due = "2011-04-30"', 'due = "2011-05-06"')
    path = write(tmp_path, text)
    applied = loaded("load", path, "--apply-changes")
    assert applied.code == 0, applied.err
    assert "applied 2 change(s)" in applied.err
    assert len(applied.out.splitlines()) == 2
    history = loaded("history", "--json").json()
    assert history[:-1] == before["history"]
    entry = history[-1]
    assert entry["kind"] == "config"
    assert entry["event"] == "apply_changes"
    assert (entry["agreement"], entry["from"], entry["to"]) == (None, None, None)
    assert entry["actor"] == "admin"
    changes = entry["data"]["changes"]
    assert isinstance(changes, list)
    assert {change["path"] for change in changes} == {
        "milestones.sar6.due",
        "organisations.TH-50.email",
    }
    sar6 = {change["path"]: change for change in changes}["milestones.sar6.due"]
    assert (sar6["old"], sar6["new"]) == ("2011-04-30", "2011-05-06")
    verify = loaded("verify", "--json")
    assert verify.code == 0 and verify.json()["ok"] is True
    # The change is in effect: the new due date is everywhere, nothing else moved.
    after = loaded("milestones", "--json").json()
    assert {row["due"] for row in after if row["milestone"] == "sar6"} == {"2011-05-06"}
    assert by_id(loaded("status", "--json").json()) == by_id(before["status"])
    # The changed file is now the loaded one: loading it again is a no-op; the old one differs.
    assert loaded("load", path).code == 0
    assert len(loaded("history", "--json").json()) == len(history)
    back = loaded("load", str(CYCLE_2554))
    assert back.code == 2 and len(back.out.splitlines()) == 2


def test_organisation_added_after_a_tick(loaded: Cli, tmp_path: Path) -> None:
    tick = loaded("tick", "--now", "2011-03-25", "--no-send")
    assert tick.code == 0, tick.err
    before = snapshot(loaded)
    text = edit(TEXT, GROUP_NE1, GROUP_NE1.replace('"TH-39"]', '"TH-39", "TH-38"]')) + BUENG_KAN
    applied = loaded("load", write(tmp_path, text), "--apply-changes")
    assert applied.code == 0, applied.err
    assert "+ organisations.TH-38" in applied.out
    rows = by_id(loaded("status", "--json").json())
    assert len(rows) == 94
    assert rows["TH-38"]["state"] == "drafted"
    assert rows["TH-38"]["group"] == "northeast-upper-1"
    assert rows["TH-38"]["kind"] == "province"
    assert rows["TH-38"]["next_due"] == {"milestone": "sar6", "due": "2011-04-30"}
    assert rows["TH-38"]["overdue"] == []
    assert statuses(loaded, "TH-38") == {
        "propose_kpis": "waived",
        "negotiation": "closed",
        "sign": "waived",
        "publish": "pending",
        "kpi_template": "waived",
        "kpi_audit": "waived",
        "change_requests": "open",
        "sar6": "pending",
        "consultation": "open",
        "esar9": "pending",
        "nso_survey": "open",
        "sar12": "pending",
        "evaluation": "open",
    }
    # The others are untouched, and the missed deadlines of the others stay missed.
    others = {key: row for key, row in rows.items() if key != "TH-38"}
    assert others == by_id(before["status"])
    assert statuses(loaded, "TH-50")["kpi_template"] == "missed"
    history = loaded("history", "--json").json()
    assert history[:-1] == before["history"]
    assert [entry["kind"] for entry in history[-1:]] == ["config"]
    assert loaded("verify").code == 0
    # The newcomer is judged like everyone else from now on.
    assert loaded("tick", "--now", "2011-05-02", "--no-send").code == 0
    assert statuses(loaded, "TH-38")["sar6"] == "missed"
    assert statuses(loaded, "TH-38")["kpi_template"] == "waived"


def test_removed_organisation_keeps_agreement_and_history(loaded: Cli, tmp_path: Path) -> None:
    fired = loaded(
        "fire",
        "TH-39",
        "propose_kpis",
        "--as",
        "province:TH-39",
        "--at",
        "2010-09-10",
        "--data",
        PROPOSAL,
    )
    assert fired.code == 0, fired.err
    own_history = loaded("history", "TH-39", "--json").json()
    assert len(own_history) == 1
    text = without_organisation(TEXT, "TH-39")
    applied = loaded("load", write(tmp_path, text), "--apply-changes")
    assert applied.code == 0, applied.err
    assert "- organisations.TH-39" in applied.out.splitlines()
    assert '~ groups.northeast-upper-1.provinces: ["TH-43", "TH-42", "TH-41", "TH-39"] → ' in (
        applied.out
    )
    status = loaded("status", "TH-39", "--json")
    assert status.code == 0, status.err
    assert status.json()[0]["state"] == "proposed"
    assert loaded("history", "TH-39", "--json").json() == own_history
    assert len(loaded("status", "--json").json()) == 93
    assert loaded("verify").code == 0
    # A removed organisation stops moving: deadlines pass it by, while others are missed.
    assert loaded("tick", "--now", "2011-02-01T10:00", "--no-send").code == 0
    removed = {m["milestone"]: m["status"] for m in loaded("milestones", "TH-39", "--json").json()}
    others = {m["milestone"]: m["status"] for m in loaded("milestones", "TH-43", "--json").json()}
    assert removed["kpi_template"] == "pending" and others["kpi_template"] == "missed"
    assert loaded("history", "TH-39", "--json").json() == own_history
    # Putting it back restores the same agreement, not a new one.
    back = loaded("load", str(CYCLE_2554), "--apply-changes")
    assert back.code == 0, back.err
    assert loaded("status", "TH-39", "--json").json()[0]["state"] == "proposed"
    assert len(loaded("status", "--json").json()) == 93


def test_moved_due_date_is_rejudged(loaded: Cli, tmp_path: Path) -> None:
    # Everyone misses SAR 6 (due Sat 30 Apr); TH-50 delivers it late on 5 May.
    for event, role, at in (
        ("propose_kpis", "province:TH-50", "2010-09-10"),
        ("agree", "committee", "2010-09-20"),
        ("sign", "admin", "2010-11-15"),
    ):
        data = ["--data", PROPOSAL] if event == "propose_kpis" else []
        fired = loaded("fire", "TH-50", event, "--as", role, "--at", at, *data)
        assert fired.code == 0, (event, fired.err)
    assert loaded("tick", "--now", "2011-05-02", "--no-send").code == 0
    assert statuses(loaded, "TH-51")["sar6"] == "missed"
    fired = loaded("fire", "TH-50", "submit_sar6", "--as", "province:TH-50", "--at", "2011-05-05")
    assert fired.code == 0, fired.err
    sar6 = by_id(loaded("milestones", "TH-50", "--json").json(), "milestone")["sar6"]
    # 2, 3 and 4 May (Labour Day in lieu is removed; 5 May is Coronation Day)
    assert (sar6["status"], sar6["late_business_days"]) == ("late", 3)
    overdue = [
        row
        for row in loaded("outbox", "--json").json()
        if row["milestone"] == "sar6" and row["kind"] == "overdue" and row["agreement"] == "TH-51"
    ]
    assert [row["status"] for row in overdue] == ["pending"]

    # The deadline moves to 31 May: in the future of the last tick.
    text = edit(TEXT, 'due = "2011-04-30"', 'due = "2011-05-31"')
    applied = loaded("load", write(tmp_path, text), "--apply-changes")
    assert applied.code == 0, applied.err
    assert statuses(loaded, "TH-51")["sar6"] == "pending"
    assert "sar6" not in by_id(loaded("status", "--json").json())["TH-51"]["overdue"]
    sar6 = by_id(loaded("milestones", "TH-50", "--json").json(), "milestone")["sar6"]
    assert (sar6["status"], sar6["late_business_days"]) == ("met", 0)
    # The overdue notices about the old date are stale: they must not go out.
    stale = [
        row["status"]
        for row in loaded("outbox", "--json").json()
        if row["milestone"] == "sar6" and row["kind"] == "overdue" and row["agreement"] == "TH-51"
    ]
    assert stale == ["skipped"]
    assert loaded("verify").code == 0

    # Before the new deadline nothing happens; past it the milestone is missed again.
    assert loaded("tick", "--now", "2011-05-31T23:59", "--no-send").code == 0
    assert statuses(loaded, "TH-51")["sar6"] == "pending"
    assert loaded("tick", "--now", "2011-06-01T00:00", "--no-send").code == 0
    assert statuses(loaded, "TH-51")["sar6"] == "missed"
    missed = [
        entry
        for entry in loaded("history", "TH-51", "--json").json()
        if entry["event"] == "missed" and entry["data"]["milestone"] == "sar6"
    ]
    assert [entry["data"]["due"] for entry in missed] == ["2011-04-30", "2011-05-31"]
    assert statuses(loaded, "TH-50")["sar6"] == "met"


def test_moved_earlier_date_makes_an_arrival_late(loaded: Cli, tmp_path: Path) -> None:
    for event, role, at in (
        ("propose_kpis", "province:TH-50", "2010-09-10"),
        ("agree", "committee", "2010-09-20"),
        ("sign", "admin", "2010-11-15"),
        ("submit_sar6", "province:TH-50", "2011-04-28T10:00"),
    ):
        data = ["--data", PROPOSAL] if event == "propose_kpis" else []
        assert loaded("fire", "TH-50", event, "--as", role, "--at", at, *data).code == 0
    assert statuses(loaded, "TH-50")["sar6"] == "met"
    text = edit(TEXT, 'due = "2011-04-30"', 'due = "2011-04-26"')  # a Tuesday
    assert loaded("load", write(tmp_path, text), "--apply-changes").code == 0
    sar6 = by_id(loaded("milestones", "TH-50", "--json").json(), "milestone")["sar6"]
    assert (sar6["status"], sar6["late_business_days"]) == ("late", 2)  # 27 and 28 April
    # Everyone else is still pending until a tick processes the new (past) deadline.
    assert statuses(loaded, "TH-51")["sar6"] == "pending"
    assert loaded("tick", "--now", "2011-04-29", "--no-send").code == 0
    assert statuses(loaded, "TH-51")["sar6"] == "missed"


def test_title_change_is_applied_without_rejudging(loaded: Cli, tmp_path: Path) -> None:
    assert loaded("tick", "--now", "2011-05-02", "--no-send").code == 0
    text = edit(TEXT, 'title_en = "Self Assessment Report, 6 months', 'title_en = "SAR, 6 months')
    applied = loaded("load", write(tmp_path, text), "--apply-changes")
    assert applied.code == 0, applied.err
    assert statuses(loaded, "TH-51")["sar6"] == "missed"
    overdue = {
        row["status"]
        for row in loaded("outbox", "--json").json()
        if row["milestone"] == "sar6" and row["kind"] == "overdue"
    }
    assert overdue == {"pending"}


def test_reordered_milestones_are_a_change(loaded: Cli, tmp_path: Path) -> None:
    blocks = TEXT.split("\n[[milestones]]")
    # swap the first two milestones (propose_kpis, negotiation)
    swapped = "\n[[milestones]]".join([blocks[0], blocks[2], blocks[1], *blocks[3:]])
    refused = loaded("load", write(tmp_path, swapped))
    assert refused.code == 2
    assert refused.out.startswith("~ milestones (order):")
    assert loaded("load", write(tmp_path, swapped), "--apply-changes").code == 0
    order = [row["milestone"] for row in loaded("milestones", "TH-50", "--json").json()]
    assert order[:2] == ["negotiation", "propose_kpis"]


def test_calendar_change_recounts_late_days(loaded: Cli, tmp_path: Path) -> None:
    """A holiday added at OPDC (TH-10) shortens a late arrival; the due date stays."""
    for event, role, at in (
        ("propose_kpis", "province:TH-50", "2010-09-10"),
        ("agree", "committee", "2010-09-20"),
        ("sign", "admin", "2010-11-15"),
        ("submit_sar6", "province:TH-50", "2011-05-05T10:00"),
    ):
        data = ["--data", PROPOSAL] if event == "propose_kpis" else []
        assert loaded("fire", "TH-50", event, "--as", role, "--at", at, *data).code == 0
    sar6 = by_id(loaded("milestones", "TH-50", "--json").json(), "milestone")["sar6"]
    assert (sar6["status"], sar6["late_business_days"]) == ("late", 3)
    extra = 'add = [{ date = "2011-05-03", name = "test holiday", scope = ["TH-10"] }]'
    text = edit(TEXT, "add = []", extra)
    applied = loaded("load", write(tmp_path, text), "--apply-changes")
    assert applied.code == 0, applied.err
    sar6 = by_id(loaded("milestones", "TH-50", "--json").json(), "milestone")["sar6"]
    assert (sar6["due"], sar6["status"], sar6["late_business_days"]) == ("2011-04-30", "late", 2)
