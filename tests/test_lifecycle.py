"""One agreement through the whole declared machine, and every illegal event, via the CLI."""

from __future__ import annotations

import json

import pytest

from states.machine import EVENTS, STATES, allowed_events
from tests.conftest import Cli, kpi_set

RESULTS = json.dumps({"results": {"1.1": 72, "2.1": 85, "3.1": 7, "4.1": 4}})

# (event, role, at, data) that take TH-50 from drafted to incentive_allocated.
HAPPY_PATH = [
    ("propose_kpis", "province:TH-50", "2010-09-10", json.dumps(kpi_set(), ensure_ascii=False)),
    ("agree", "committee", "2010-09-20", None),
    ("sign", "admin", "2010-11-15", None),
    ("publish", "province:TH-50", "2010-11-20", None),
    ("submit_kpi_template", "province:TH-50", "2011-01-20", None),
    ("send_kpi_audit", "admin", "2011-02-15", None),
    ("submit_sar6", "province:TH-50", "2011-04-28", None),
    ("submit_esar9", "province:TH-50", "2011-07-15", None),
    ("submit_sar12", "province:TH-50", "2011-11-03T10:00", None),
    ("evaluate", "evaluator", "2011-12-15", RESULTS),
    ("approve_results", "admin", "2012-02-01", json.dumps({"decision": "PDC 1/2555"})),
    ("allocate_incentive", "admin", "2012-03-01", None),
]

EXPECTED_STATES = [
    "proposed",
    "agreed",
    "signed",
    "signed",
    "template_submitted",
    "audited",
    "sar6_submitted",
    "esar9_submitted",
    "sar12_submitted",
    "evaluated",
    "results_approved",
    "incentive_allocated",
]


def fire(cli: Cli, event: str, role: str, at: str | None, data: str | None) -> object:
    args = ["fire", "TH-50", event, "--as", role, "--json"]
    if at:
        args += ["--at", at]
    if data:
        args += ["--data", data]
    return cli(*args)


def test_one_province_from_drafted_to_incentive(loaded: Cli) -> None:
    for (event, role, at, data), expected in zip(HAPPY_PATH, EXPECTED_STATES, strict=True):
        result = loaded(
            *["fire", "TH-50", event, "--as", role, "--json", "--at", at]
            + (["--data", data] if data else [])
        )
        assert result.code == 0, (event, result.err)
        assert result.json()["state"] == expected
    history = loaded("history", "TH-50", "--json").json()
    assert [entry["event"] for entry in history] == [step[0] for step in HAPPY_PATH]
    assert [entry["to"] for entry in history] == EXPECTED_STATES
    milestones = {m["milestone"]: m for m in loaded("milestones", "TH-50", "--json").json()}
    assert milestones["sar12"]["status"] == "late"
    assert milestones["sar12"]["late_business_days"] == 3
    assert milestones["sar6"]["status"] == "met"
    score = loaded("score", "TH-50", "--json").json()
    assert score["penalty"] == "0.1500"
    assert score["final"] is not None and score["tier"] is not None
    verify = loaded("verify", "--json")
    assert verify.code == 0 and verify.json()["ok"] is True
    assert verify.json()["entries"] == len(HAPPY_PATH)


def _drive_to(cli: Cli, state: str) -> None:
    """Fire the happy path on TH-50 until it is in ``state``."""
    if state == "drafted":
        return
    if state == "negotiating":  # the side road: a KPI off the approved list
        off_list = json.dumps(kpi_set(approved=False), ensure_ascii=False)
        assert (
            cli(
                "fire",
                "TH-50",
                "propose_kpis",
                "--as",
                "province:TH-50",
                "--at",
                "2010-09-10",
                "--data",
                off_list,
            ).code
            == 0
        )
        assert (
            cli("fire", "TH-50", "start_negotiation", "--as", "admin", "--at", "2010-09-27").code
            == 0
        )
        return
    for (event, role, at, data), reached in zip(HAPPY_PATH, EXPECTED_STATES, strict=True):
        args = ["fire", "TH-50", event, "--as", role, "--at", at] + (
            ["--data", data] if data else []
        )
        assert cli(*args).code == 0
        if reached == state:
            return
    raise AssertionError(state)


ROLE_FOR = {"own": "province:TH-50"}


def _role(event: str) -> str:
    roles = sorted(EVENTS[event].roles)
    return ROLE_FOR.get(roles[0], roles[0])


@pytest.mark.parametrize("state", STATES)
def test_every_illegal_event_exits_3_and_changes_nothing(sqlite_cli: Cli, state: str) -> None:
    cli = sqlite_cli
    assert cli("load", str(__import__("tests.conftest").conftest.CYCLE_2554)).code == 0
    _drive_to(cli, state)
    before = cli("status", "TH-50", "--json").json()
    entries = len(cli("history", "--json").json())
    illegal = [event for event in EVENTS if event not in allowed_events(state)]
    assert illegal, state
    for event in illegal:
        result = cli("fire", "TH-50", event, "--as", _role(event), "--at", "2013-01-01")
        assert result.code == 3, (state, event, result.err)
        assert state in result.err and "allowed events" in result.err
        assert "Traceback" not in result.err
    assert cli("status", "TH-50", "--json").json() == before
    assert len(cli("history", "--json").json()) == entries
