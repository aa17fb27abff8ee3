"""The hash-chained history (CONTRACT.md "History and audit"), on both backends.

The chain is recomputed here from ``history --json`` output alone, with hashlib and json, and
never through ``workflow.store.history``: that is what an outside auditor would do.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from tests.conftest import CYCLE_2554, Cli, kpi_set
from tests.support.history import GENESIS, KPIS, fire_ok, raw_sql, recompute
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.usecases.fire import FireRequest, fire


def strict_json(text: str) -> Any:
    """Parse as strict JSON (no NaN or Infinity), as any outside auditor's tool would."""

    def reject(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=reject)


def five_entries(cli: Cli) -> None:
    """TH-50 proposed/agreed/signed, TH-51 proposed, TH-50 published: seq 1…5."""
    fire_ok(cli, "TH-50", "propose_kpis", "province:TH-50", "2010-09-10", KPIS)
    fire_ok(cli, "TH-50", "agree", "committee", "2010-09-20")
    fire_ok(cli, "TH-51", "propose_kpis", "province:TH-51", "2010-09-11", KPIS)
    fire_ok(cli, "TH-50", "sign", "admin", "2010-11-15")
    fire_ok(
        cli, "TH-50", "publish", "province:TH-50", "2010-11-20", '{"url": "https://x.example/ก"}'
    )


def test_chain_recomputes_from_history_output_alone(loaded: Cli, tmp_path: Any) -> None:
    five_entries(loaded)
    # timer entries (a tick) and a config entry (load --apply-changes) are in the same chain
    assert loaded("tick", "--now", "2010-09-14T00:00", "--no-send").code == 0
    changed = tmp_path / "changed.toml"
    original = CYCLE_2554.read_text(encoding="utf-8")
    assert 'due = "2011-07-16"' in original
    changed.write_text(original.replace('due = "2011-07-16"', 'due = "2011-07-18"'), "utf-8")
    applied = loaded("load", str(changed), "--apply-changes")
    assert applied.code == 0, applied.err
    entries = strict_json(loaded("history", "--json").out)
    assert {entry["kind"] for entry in entries} == {"event", "timer", "config"}
    (config,) = [entry for entry in entries if entry["kind"] == "config"]
    assert (config["event"], config["actor"]) == ("apply_changes", "admin")
    assert config["from"] is None and config["to"] is None
    assert [change["path"] for change in config["data"]["changes"]] == ["milestones.esar9.due"]
    head = recompute(entries)
    verify = loaded("verify", "--json")
    assert verify.code == 0, verify.err
    assert verify.json()["ok"] is True
    assert verify.json()["entries"] == len(entries)
    assert verify.json()["head"] == head
    assert loaded("verify", "--head", head).code == 0
    # the per-agreement view is a filter of the same entries, unchanged
    only = loaded("history", "TH-50", "--json").json()
    assert only == [entry for entry in entries if entry["agreement"] == "TH-50"]
    assert [entry["event"] for entry in only[:4]] == ["propose_kpis", "agree", "sign", "publish"]
    # Thai text is hashed as UTF-8, not as \\u escapes (ensure_ascii=False)
    assert "ร้อยละ" in json.dumps(entries[0]["data"], ensure_ascii=False)


def test_event_entry_fields(loaded: Cli) -> None:
    before = int(time.time())
    fire_ok(loaded, "TH-50", "propose_kpis", "province:TH-50", "2010-09-10T14:30", KPIS)
    after = int(time.time())
    (entry,) = loaded("history", "--json").json()
    assert entry["seq"] == 1 and entry["prev_hash"] == GENESIS
    assert (entry["kind"], entry["event"], entry["agreement"]) == ("event", "propose_kpis", "TH-50")
    assert (entry["from"], entry["to"], entry["actor"]) == ("drafted", "proposed", "province:TH-50")
    assert entry["at"] == "2010-09-10T14:30:00+07:00"
    assert entry["data"] == kpi_set()
    # recorded_at is the wall clock for CLI fires, printed in +07:00
    assert entry["recorded_at"].endswith("+07:00")
    assert before - 1 <= parse_instant(entry["recorded_at"]) <= after + 1


def test_as_of_keeps_what_was_recorded_by_then(loaded: Cli) -> None:
    db = Database(loaded.db_url)
    first = parse_instant("2010-09-10T10:00")
    second = parse_instant("2010-09-20T10:00")
    clock = VirtualClock(first)
    fire(db, clock, FireRequest("TH-50", "propose_kpis", "province:TH-50", data=kpi_set()))
    clock.set(second)
    fire(db, clock, FireRequest("TH-50", "agree", "committee"))
    db.dispose()

    def seqs(*args: str) -> list[int]:
        result = loaded("history", *args, "--json")
        assert result.code == 0, result.err
        return [entry["seq"] for entry in result.json()]

    assert seqs() == [1, 2]
    assert seqs("--as-of", "2010-09-10T09:59:59") == []
    assert seqs("--as-of", "2010-09-10T10:00:00+07:00") == [1]  # ≤ T: the boundary is kept
    assert seqs("--as-of", "2010-09-10T03:00:00Z") == [1]  # the same instant in UTC
    assert seqs("--as-of", "2010-09-15") == [1]
    assert seqs("TH-50", "--as-of", "2010-09-15") == [1]
    assert seqs("TH-51", "--as-of", "2010-09-15") == []
    assert seqs("--as-of", "2010-09-20T10:00") == [1, 2]
    history = loaded("history", "--json").json()
    assert history[0]["recorded_at"] == "2010-09-10T10:00:00+07:00"
    assert history[1]["recorded_at"] == "2010-09-20T10:00:00+07:00"
    assert loaded("history", "--as-of", "not a time").code == 2


def test_as_of_between_two_wall_clock_fires(loaded: Cli) -> None:
    fire_ok(loaded, "TH-50", "propose_kpis", "province:TH-50", "2010-09-10", KPIS)
    first = loaded("history", "--json").json()[0]["recorded_at"]
    time.sleep(max(0.0, parse_instant(first) + 1.05 - time.time()))  # into the next second
    fire_ok(loaded, "TH-50", "agree", "committee", "2010-09-20")
    entries = loaded("history", "--json").json()
    assert parse_instant(entries[1]["recorded_at"]) > parse_instant(first)
    kept = loaded("history", "--as-of", first, "--json").json()
    assert kept == entries[:1]


def test_verify_names_a_changed_row(loaded: Cli) -> None:
    five_entries(loaded)
    clean = loaded("verify", "--json")
    assert clean.code == 0 and clean.json()["entries"] == 5
    raw_sql(loaded, "UPDATE history SET data = :data WHERE seq = 3", data='{"kpis": []}')
    broken = loaded("verify", "--json")
    assert broken.code == 6
    assert broken.json()["ok"] is False
    assert broken.json()["first_bad_seq"] == 3
    assert "seq 3" in broken.err and "Traceback" not in broken.err
    assert len(broken.err.strip().splitlines()) == 1
    plain = loaded("verify")
    assert plain.code == 6 and "seq 3" in plain.out + plain.err


def test_verify_names_a_changed_column_other_than_data(loaded: Cli) -> None:
    five_entries(loaded)
    raw_sql(loaded, "UPDATE history SET to_state = 'signed' WHERE seq = 2")
    broken = loaded("verify", "--json")
    assert broken.code == 6 and broken.json()["first_bad_seq"] == 2


def test_verify_names_a_deleted_middle_row(loaded: Cli) -> None:
    five_entries(loaded)
    raw_sql(loaded, "DELETE FROM history WHERE seq = 3")
    broken = loaded("verify", "--json")
    assert broken.code == 6
    assert broken.json()["first_bad_seq"] == 3
    assert "seq 3" in broken.err


def test_deleting_the_last_row_is_caught_by_head(loaded: Cli) -> None:
    five_entries(loaded)
    entries = loaded("history", "--json").json()
    old_head = loaded("verify", "--json").json()["head"]
    assert old_head == entries[-1]["hash"]
    raw_sql(loaded, "DELETE FROM history WHERE seq = 5")
    assert loaded("verify").code == 0  # a cut-off chain is still a valid chain
    cut = loaded("verify", "--head", old_head, "--json")
    assert cut.code == 6
    assert cut.json()["ok"] is False
    assert cut.json()["head"] == entries[-2]["hash"]
    assert "Traceback" not in cut.err and cut.err.strip()
    assert loaded("verify", "--head", entries[-2]["hash"]).code == 0


def test_a_consistently_rewritten_tail_is_caught_only_by_head(loaded: Cli) -> None:
    five_entries(loaded)
    entries = loaded("history", "--json").json()
    old_head = entries[-1]["hash"]
    # rewrite seq 3's data and re-chain 3…5 exactly as the contract says (what a forger does)
    prev = entries[1]["hash"]
    for entry in entries[2:]:
        if entry["seq"] == 3:
            entry["data"] = {"forged": True}
        entry["prev_hash"] = prev
        body = {key: value for key, value in entry.items() if key != "hash"}
        payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        prev = hashlib.sha256((prev + "\n" + payload).encode()).hexdigest()
        raw_sql(
            loaded,
            "UPDATE history SET data = :data, prev_hash = :prev, hash = :hash WHERE seq = :seq",
            data=json.dumps(entry["data"]),
            prev=entry["prev_hash"],
            hash=prev,
            seq=entry["seq"],
        )
    assert loaded("verify").code == 0
    forged = loaded("verify", "--head", old_head)
    assert forged.code == 6


def test_effective_time_before_the_last_event_is_refused(loaded: Cli) -> None:
    fire_ok(loaded, "TH-50", "propose_kpis", "province:TH-50", "2010-09-10T12:00", KPIS)
    before = loaded("history", "--json").json()
    status = loaded("status", "TH-50", "--json").json()
    early = loaded("fire", "TH-50", "agree", "--as", "committee", "--at", "2010-09-10T11:59")
    assert early.code == 2, early.err
    assert "before" in early.err and "Traceback" not in early.err
    # the time check comes before the state check (sign is not allowed in proposed: 3) …
    assert loaded("fire", "TH-50", "sign", "--as", "admin", "--at", "2010-09-01").code == 2
    # … and after authorisation (4)
    assert (
        loaded("fire", "TH-50", "agree", "--as", "province:TH-51", "--at", "2010-09-01").code == 4
    )
    assert loaded("history", "--json").json() == before
    assert loaded("status", "TH-50", "--json").json() == status
    # the same instant as the last event is not "before" it
    fire_ok(loaded, "TH-50", "agree", "committee", "2010-09-10T12:00")


def test_tick_records_missed_deadlines_as_timer_entries(loaded: Cli) -> None:
    fire_ok(loaded, "TH-50", "propose_kpis", "province:TH-50", "2010-09-12", KPIS)
    assert loaded("tick", "--now", "2010-09-13T23:59:59", "--no-send").code == 0
    assert len(loaded("history", "--json").json()) == 1  # not yet: the deadline is the day's end
    assert loaded("tick", "--now", "2010-09-14T00:00", "--no-send").code == 0
    entries = loaded("history", "--json").json()
    timers = [entry for entry in entries if entry["kind"] == "timer"]
    status = {row["agreement"]: row for row in loaded("status", "--json").json()}
    expected = {org for org, row in status.items() if row["kind"] in ("province", "group")}
    assert {entry["agreement"] for entry in timers} == expected - {"TH-50"}
    assert len(timers) == len(expected) - 1
    for entry in timers:
        assert entry["event"] == "missed"
        assert entry["actor"] == "system"
        assert entry["at"] == "2010-09-14T00:00:00+07:00"
        assert entry["from"] == entry["to"] == status[entry["agreement"]]["state"] == "drafted"
        assert entry["data"] == {"milestone": "propose_kpis", "due": "2010-09-13"}
    recompute(entries)
    # the same tick again records nothing
    assert loaded("tick", "--now", "2010-09-14T00:00", "--no-send").code == 0
    assert loaded("history", "--json").json() == entries


def test_timer_entries_do_not_bound_the_effective_time(loaded: Cli) -> None:
    assert loaded("tick", "--now", "2010-09-15", "--no-send").code == 0
    (missed,) = loaded("history", "TH-51", "--json").json()
    assert missed["event"] == "missed"
    # dated before the deadline that the tick already marked missed: allowed, and met
    fire_ok(loaded, "TH-51", "propose_kpis", "province:TH-51", "2010-09-12", KPIS)
    rows = loaded("milestones", "TH-51", "--json").json()
    (propose,) = [row for row in rows if row["milestone"] == "propose_kpis"]
    assert propose["status"] == "met"
    after = loaded("history", "TH-51", "--json").json()
    assert after[0] == missed  # the missed entry stays
    assert after[1]["event"] == "propose_kpis" and after[1]["at"] == "2010-09-12T00:00:00+07:00"
    assert loaded("verify").code == 0


def test_data_that_would_print_as_invalid_json_is_refused(loaded: Cli) -> None:
    # 1e400 parses to infinity; stored, it would print as Infinity: not JSON, not recomputable
    data = KPIS[:-1] + ', "note": 1e400}'
    refused = loaded("fire", "TH-50", "propose_kpis", "--as", "province:TH-50", "--data", data)
    assert refused.code == 2 and "Traceback" not in refused.err, refused.err
    assert loaded("history", "--json").json() == []
    fire_ok(
        loaded, "TH-50", "propose_kpis", "province:TH-50", "2010-09-10", KPIS[:-1] + ', "n": 1e300}'
    )
    recompute(strict_json(loaded("history", "--json").out))
