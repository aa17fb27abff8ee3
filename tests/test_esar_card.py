"""The e-SAR Card as the data of submit_sar6 / submit_esar9 / submit_sar12, via the real CLI.

CONTRACT.md "Additions (version 7)": the card lists each KPI of the agreement's current KPI
version at most once; anything else is exit 2 at the data step (after authorisation and state),
naming the row and the field, with nothing written. The history entry carries the card as given.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Cli, kpi_set
from workflow.usecases.esar import card_problems

CARD: list[dict[str, Any]] = [
    {"kpi": "1.1", "result": 72.5, "note": "เกินเป้าหมาย", "level": 4, "evidence": "รายงาน สนจ."},
    {"kpi": "2.1", "result": 85},
    {"kpi": "3.1", "result": 7, "note": ""},
]


def _sign(cli: Cli, org: str = "TH-50") -> None:
    """Take ``org`` from drafted to signed with the standard KPI set."""
    steps = [
        (
            "propose_kpis",
            f"province:{org}",
            "2010-09-10",
            json.dumps(kpi_set(), ensure_ascii=False),
        ),
        ("agree", "committee", "2010-09-20", None),
        ("sign", "admin", "2010-11-15", None),
    ]
    for event, role, at, data in steps:
        args = ["fire", org, event, "--as", role, "--at", at]
        result = cli(*args, *(["--data", data] if data else []))
        assert result.code == 0, (event, result.err)


def _submit(cli: Cli, event: str, data: Any, org: str = "TH-50", role: str | None = None) -> Any:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return cli(
        "fire", org, event, "--as", role or f"province:{org}", "--at", "2011-04-20",
        "--data", text, "--json",
    )  # fmt: skip


def _snapshot(cli: Cli, org: str = "TH-50") -> tuple[str, int]:
    """The agreement's state and the number of history entries: 'nothing written' is checked."""
    state = cli("status", org, "--json").json()[0]["state"]
    return state, len(cli("history", "--json").json())


@pytest.fixture
def signed(loaded: Cli) -> Cli:
    """cycle_2554 loaded and TH-50 signed."""
    _sign(loaded)
    return loaded


def test_valid_cards_are_recorded_as_given_and_the_chain_verifies(signed: Cli) -> None:
    for event, state in (
        ("submit_sar6", "sar6_submitted"),
        ("submit_esar9", "esar9_submitted"),
        ("submit_sar12", "sar12_submitted"),
    ):
        card = (
            [dict(row, result=row["result"] + 1) for row in CARD]
            if event != "submit_sar6"
            else CARD
        )
        result = _submit(signed, event, {"card": card})
        assert result.code == 0, result.err
        assert result.json()["state"] == state
        entry = signed("history", "TH-50", "--json").json()[-1]
        assert entry["event"] == event
        assert entry["data"] == {"card": card}
    first = signed("history", "TH-50", "--json").json()[3]
    assert first["data"]["card"][0]["result"] == 72.5 and first["data"]["card"][1]["result"] == 85
    assert isinstance(first["data"]["card"][1]["result"], int)  # echoed as given, not 85.0
    verify = signed("verify", "--json")
    assert verify.code == 0 and verify.json()["ok"] is True


def test_a_bare_submit_still_works(signed: Cli) -> None:
    assert _submit(signed, "submit_sar6", {}).code == 0
    result = signed("fire", "TH-50", "submit_esar9", "--as", "province:TH-50", "--at", "2011-07-01")
    assert result.code == 0, result.err
    assert [e["data"] for e in signed("history", "TH-50", "--json").json()[-2:]] == [{}, {}]


BAD_CARDS: list[tuple[Any, str]] = [
    ([{"kpi": "9.9", "result": 1}], "card[0].kpi"),
    ([{"kpi": "1.1", "result": 1}, {"kpi": "1.1", "result": 2}], "card[1].kpi"),
    ([{"kpi": "1.1", "result": "72"}], "card[0].result"),
    ([{"kpi": "1.1", "result": True}], "card[0].result"),
    ([{"kpi": "1.1", "result": None}], "card[0].result"),
    ([{"kpi": "1.1"}], "card[0].result"),
    ([{"kpi": "1.1", "result": 1}, {"kpi": "2.1", "result": [1]}], "card[1].result"),
    ([{"kpi": "1.1", "result": 1, "note": 5}], "card[0].note"),
    ([{"kpi": "1.1", "result": 1, "evidence": {"a": 1}}], "card[0].evidence"),
    ([{"kpi": "1.1", "result": 1, "level": 6}], "card[0].level"),
    ([{"kpi": "1.1", "result": 1, "level": True}], "card[0].level"),
    ([{"kpi": "1.1", "result": 1, "score": 5}], "card[0].score"),
    ([{"kpi": 1.1, "result": 1}], "card[0].kpi"),
    (["1.1"], "card[0]"),
    ({"1.1": 72}, "card:"),
    ([], "card:"),
]


def test_each_bad_card_is_refused_naming_the_field_and_nothing_is_written(signed: Cli) -> None:
    before = _snapshot(signed)
    for card, field in BAD_CARDS:
        result = _submit(signed, "submit_sar6", {"card": card})
        assert result.code == 2, (card, result.err)
        assert field in result.err, (card, result.err)
        assert result.out == "" and len(result.err.strip().splitlines()) == 1
        assert _snapshot(signed) == before


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_results_are_refused(signed: Cli, text: str) -> None:
    before = _snapshot(signed)
    data = '{"card": [{"kpi": "1.1", "result": ' + text + "}]}"
    result = _submit(signed, "submit_sar6", data)
    assert result.code == 2, result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    assert _snapshot(signed) == before


def test_the_card_messages_name_the_field_in_english_and_thai() -> None:
    problems = card_problems([{"kpi": "1.1", "result": float("nan")}], ["1.1"])
    assert problems == ["card[0].result: must be a finite number (ผลการดำเนินงานต้องเป็นตัวเลข)"]
    assert card_problems([{"kpi": "1.1", "result": float("inf")}], ["1.1"]) == problems
    assert card_problems([{"kpi": "1.1", "result": 1}], []) == [
        "card: the agreement has no KPI set to report on (คำรับรองนี้ยังไม่มีตัวชี้วัด)"
    ]
    assert card_problems(CARD, ["1.1", "2.1", "3.1", "4.1"]) == []


def test_authorisation_comes_before_the_card(signed: Cli) -> None:
    _sign(signed, "TH-51")
    before = _snapshot(signed)
    bad = {"card": [{"kpi": "9.9", "result": "x"}]}
    result = _submit(signed, "submit_sar6", bad, role="province:TH-51")
    assert result.code == 4, result.err
    assert _snapshot(signed) == before


def test_the_state_comes_before_the_card(signed: Cli) -> None:
    before = _snapshot(signed, "TH-52")
    result = _submit(signed, "submit_sar6", {"card": [{"kpi": "9.9", "result": "x"}]}, org="TH-52")
    assert result.code == 3, result.err
    assert "drafted" in result.err
    assert _snapshot(signed, "TH-52") == before


def test_the_card_follows_the_current_kpi_version(signed: Cli) -> None:
    changed = kpi_set()
    changed["kpis"][0]["id"] = "1.2"
    request = {"reason": "budget", "explanation": "งบประมาณไม่ได้รับจัดสรร", **changed}
    steps = [
        ("request_change", "province:TH-50", request),
        ("approve_change", "admin", None),
    ]
    for event, role, data in steps:
        args = ["fire", "TH-50", event, "--as", role, "--at", "2011-03-01"]
        extra = ["--data", json.dumps(data, ensure_ascii=False)] if data else []
        assert signed(*args, *extra).code == 0
    old = _submit(signed, "submit_sar6", {"card": [{"kpi": "1.1", "result": 70}]})
    assert old.code == 2 and "card[0].kpi" in old.err
    new = _submit(signed, "submit_sar6", {"card": [{"kpi": "1.2", "result": 70}]})
    assert new.code == 0, new.err
