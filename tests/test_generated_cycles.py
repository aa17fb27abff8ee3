"""Cycles made by ``bench.cyclegen``: a second cycle beside cycle 2554, the
``next_business_day`` policy, agencies, and a 10,000-agency cycle that loads and fires quickly."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import holidays

from bench.cyclegen import generate_cycle
from tests.conftest import Cli, kpi_set

PROPOSAL = json.dumps(kpi_set(), ensure_ascii=False)


def business_day(day: dt.date, calendar: holidays.HolidayBase) -> bool:
    return day.weekday() < 5 and day not in calendar


def test_second_cycle_beside_2554(loaded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "cycle_2560.toml"
    path.write_text(
        generate_cycle(cycle_id="2560", agencies=5, deadline_policy="next_business_day"),
        encoding="utf-8",
    )
    valid = loaded("validate", str(path))
    assert valid.code == 0, valid.out
    assert valid.out == ""
    result = loaded("load", str(path))
    assert result.code == 0, result.err
    assert "20 agreements" in result.err

    # --cycle selects either cycle; without it the latest loaded (2560) is meant.
    rows = loaded("status", "--cycle", "2560", "--json").json()
    assert loaded("status", "--json").json() == rows
    assert {row["cycle"] for row in rows} == {"2560"}
    kinds = [row["kind"] for row in rows]
    assert (kinds.count("group"), kinds.count("province"), kinds.count("agency")) == (3, 12, 5)
    agencies = [row for row in rows if row["kind"] == "agency"]
    assert sorted(row["agreement"] for row in agencies) == [f"agency-00000{n}" for n in range(1, 6)]
    assert all(row["group"] is None and row["state"] == "drafted" for row in agencies)
    assert all(row["group"] is not None for row in rows if row["kind"] == "province")
    old = loaded("status", "--cycle", "2554", "--json").json()
    assert len(old) == 93 and {row["cycle"] for row in old} == {"2554"}

    # Every due date of a deliverable or cutoff falls on a business day; windows keep theirs.
    calendar = holidays.country_holidays("TH", categories=("public", "government"))
    milestones = loaded("milestones", "--cycle", "2560", "agency-000001", "--json").json()
    assert len(milestones) == 13  # no applies_to: agencies have every milestone
    moved = 0
    for row in milestones:
        if row["due"] is None:
            continue
        due = dt.date.fromisoformat(row["due"])
        published = dt.date.fromisoformat(row["published_due"])
        if row["kind"] == "window":
            assert due == published, row
            continue
        assert business_day(due, calendar), row
        assert due >= published
        # nothing skipped: every day from the published date to the day before is no work day
        for n in range((due - published).days):
            assert not business_day(published + dt.timedelta(days=n), calendar), row
        moved += due != published
    by_id = {row["milestone"]: row for row in milestones}
    # SAR 6 is published for Sunday 30 Apr 2017: moved past Labour Day (Mon 1 May) to 2 May.
    assert dt.date(2017, 4, 30).weekday() == 6
    assert (by_id["sar6"]["published_due"], by_id["sar6"]["due"]) == ("2017-04-30", "2017-05-02")
    # e-SAR 9 on Sunday 16 Jul 2017 moves to Monday 17 Jul.
    assert (by_id["esar9"]["published_due"], by_id["esar9"]["due"]) == ("2017-07-16", "2017-07-17")
    assert moved == 2

    # Events go to the cycle asked for; the other cycle's agreement of the same id is untouched.
    fired = loaded(
        "fire",
        "--cycle",
        "2560",
        "TH-12",
        "propose_kpis",
        "--as",
        "province:TH-12",
        "--at",
        "2016-09-01",
        "--data",
        PROPOSAL,
        "--json",
    )
    assert fired.code == 0, fired.err
    assert fired.json()["state"] == "proposed"
    assert {row["agreement"]: row["state"] for row in old}["TH-12"] == "drafted"
    now_2554 = loaded("status", "--cycle", "2554", "TH-12", "--json").json()
    assert now_2554[0]["state"] == "drafted"
    assert loaded("load", str(path)).code == 0  # loading it again is still a no-op
    assert loaded("verify").code == 0


def test_ten_thousand_agencies_load_and_fire(cli: Cli, tmp_path: Path) -> None:
    started = time.perf_counter()
    path = tmp_path / "big.toml"
    path.write_text(generate_cycle(cycle_id="2561", agencies=10_000), encoding="utf-8")
    loaded = cli("load", str(path))
    assert loaded.code == 0, loaded.err
    assert "10015 agreements" in loaded.err
    load_seconds = time.perf_counter() - started
    fired = cli(
        "fire",
        "agency-009999",
        "propose_kpis",
        "--as",
        "agency:agency-009999",
        "--at",
        "2017-09-01",
        "--data",
        PROPOSAL,
        "--json",
    )
    assert fired.code == 0, fired.err
    assert fired.json()["kind"] == "agency" and fired.json()["state"] == "proposed"
    refused = cli("fire", "agency-009999", "sign", "--as", "admin", "--at", "2017-09-02")
    assert refused.code == 3
    rows = cli("status", "agency-000001", "agency-009999", "--json").json()
    assert [row["state"] for row in rows] == ["drafted", "proposed"]
    total = time.perf_counter() - started
    print(f"10,000 agencies: generate+load {load_seconds:.2f} s, total {total:.2f} s")
    assert total < 20, f"too slow: {total:.1f} s"
