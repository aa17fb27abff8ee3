"""Scoring: hand-computed examples (arithmetic in the comments) and a few properties."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.rules.kpis import Kpi, ScoringRules
from workflow.rules.scoring import (
    composite,
    dimension_scores,
    kpi_score,
    late_penalty,
    score_card,
    tier_for,
)

D = Decimal
PER_DAY = D("0.0500")
TIERS = (("ผ่าน (pass)", D("3.0000")), ("ดีเด่น (excellent)", D("4.0000")))
RULES = ScoringRules(None, frozenset(), TIERS, None)
FLOOR_RULES = ScoringRules(None, frozenset(), TIERS, D("1.0000"))


def make(
    kpi_id: str = "1.1",
    levels: tuple[int | float, ...] = (60, 65, 70, 75, 80),
    *,
    direction: str = "higher",
    weight: int | float = 100,
    dimension: int = 1,
) -> Kpi:
    return Kpi(kpi_id, dimension, "ตัวชี้วัด", "ร้อยละ", direction, weight, None, levels)


HIGH = make()  # levels 60, 65, 70, 75, 80 for scores 1..5
LOW = make("3.1", (10, 8, 6, 4, 2), direction="lower")  # e.g. days of service time


def test_exactly_on_a_level() -> None:
    assert kpi_score(HIGH, 70) == D("3.0000")  # 70 is level 3
    assert kpi_score(HIGH, 65) == D("2.0000")  # 65 is level 2
    assert kpi_score(HIGH, 60) == D("1.0000")  # level 1
    assert kpi_score(HIGH, 80) == D("5.0000")  # level 5


def test_between_levels() -> None:
    # 72 lies between level 3 (70) and level 4 (75): 3 + (72 - 70)/(75 - 70) = 3 + 2/5 = 3.4
    assert kpi_score(HIGH, 72) == D("3.4000")
    # 61.5: 1 + (61.5 - 60)/(65 - 60) = 1 + 1.5/5 = 1.3
    assert kpi_score(HIGH, 61.5) == D("1.3000")
    # 71.23456: 3 + 1.23456/5 = 3.246912 -> 3.2469
    assert kpi_score(HIGH, 71.23456) == D("3.2469")


def test_rounding_is_half_up() -> None:
    # levels 0, 32, 64, 96, 128; result 1: 1 + 1/32 = 1.03125 -> half up 1.0313 (not 1.0312)
    kpi = make(levels=(0, 32, 64, 96, 128))
    assert kpi_score(kpi, 1) == D("1.0313")


def test_beyond_level_5_and_below_level_1() -> None:
    assert kpi_score(HIGH, 95) == D("5.0000")  # beyond 80 -> capped at 5
    assert kpi_score(HIGH, 12) == D("1.0000")  # below 60 -> 1
    assert kpi_score(HIGH, -3) == D("1.0000")


def test_lower_is_better() -> None:
    # levels 10, 8, 6, 4, 2 (decreasing). 7 lies between level 2 (8) and level 3 (6):
    # 2 + (8 - 7)/(8 - 6) = 2 + 1/2 = 2.5
    assert kpi_score(LOW, 7) == D("2.5000")
    assert kpi_score(LOW, 4) == D("4.0000")  # exactly level 4
    # 2.5 between level 4 (4) and level 5 (2): 4 + (4 - 2.5)/(4 - 2) = 4 + 0.75 = 4.75
    assert kpi_score(LOW, 2.5) == D("4.7500")
    assert kpi_score(LOW, 12) == D("1.0000")  # worse than level 1 -> 1
    assert kpi_score(LOW, 1) == D("5.0000")  # better than level 5 -> 5


def test_float_levels_use_their_decimal_text() -> None:
    # levels 0.1 .. 0.5; result 0.3 is exactly level 3 (no binary-float drift)
    kpi = make(levels=(0.1, 0.2, 0.3, 0.4, 0.5))
    assert kpi_score(kpi, 0.3) == D("3.0000")
    # 0.25: 2 + (0.25 - 0.2)/(0.3 - 0.2) = 2 + 0.05/0.1 = 2.5
    assert kpi_score(kpi, 0.25) == D("2.5000")


def test_bad_results_are_refused() -> None:
    for bad in (float("nan"), float("inf"), True):
        with pytest.raises(ValueError):
            kpi_score(HIGH, bad)


# Three KPIs used below:
#   A: dimension 1, weight 40, higher, levels 60..80, result 72 -> 3.4000 (above)
#   B: dimension 1, weight 35, lower, levels 10..2, result 7   -> 2.5000 (above)
#   C: dimension 2, weight 25, higher, levels 1..5, result 3.3333 -> 3 + 0.3333/1 = 3.3333
A = make("1.1", weight=40)
B = make("1.2", (10, 8, 6, 4, 2), direction="lower", weight=35)
C = make("2.1", (1, 2, 3, 4, 5), weight=25, dimension=2)
RESULTS: dict[str, int | float] = {"1.1": 72, "1.2": 7, "2.1": 3.3333}


def test_three_kpi_composite_and_dimensions() -> None:
    scored = [(k, kpi_score(k, RESULTS[k.id])) for k in (A, B, C)]
    assert [s for _, s in scored] == [D("3.4000"), D("2.5000"), D("3.3333")]
    # (40 x 3.4 + 35 x 2.5 + 25 x 3.3333) / 100 = (136 + 87.5 + 83.3325) / 100
    #   = 306.8325 / 100 = 3.068325 -> 3.0683
    assert composite(scored) == D("3.0683")
    # dimension 1: (136 + 87.5) / 75 = 223.5 / 75 = 2.98; dimension 2: 83.3325 / 25 = 3.3333
    assert dimension_scores(scored) == {"1": D("2.9800"), "2": D("3.3333")}


def test_composite_uses_the_rounded_kpi_scores() -> None:
    # X: levels 0,100,...: result 0.004 -> 1 + 0.004/100 = 1.00004 -> 1.0000
    # Y: levels 0,32,...:  result 0.0016 -> 1 + 0.0016/32 = 1.00005 -> 1.0001 (half up)
    # rounded first: (50 x 1.0000 + 50 x 1.0001)/100 = 1.00005 -> 1.0001
    # (unrounded it would be (1.00004 + 1.00005)/2 = 1.000045 -> 1.0000)
    x = make("x", (0, 100, 200, 300, 400), weight=50)
    y = make("y", (0, 32, 64, 96, 128), weight=50)
    scored = [(x, kpi_score(x, 0.004)), (y, kpi_score(y, 0.0016))]
    assert [s for _, s in scored] == [D("1.0000"), D("1.0001")]
    assert composite(scored) == D("1.0001")


def test_sar12_three_business_days_late() -> None:
    # due Mon 31 Oct 2011, arrives Thu 3 Nov 2011: 1, 2, 3 Nov = 3 days x 0.0500 = 0.1500
    assert late_penalty(3, PER_DAY) == D("0.1500")
    assert late_penalty(0, PER_DAY) == D("0.0000")
    assert late_penalty(None, PER_DAY) == D("0.0000")
    assert late_penalty(3, None) == D("0.0000")
    with pytest.raises(ValueError):
        late_penalty(-1, PER_DAY)


def test_score_card_full() -> None:
    card = score_card("TH-50", [A, B, C], RESULTS, 3, PER_DAY, RULES)
    assert json.loads(json.dumps(card, ensure_ascii=False)) == card
    assert card["agreement"] == "TH-50"
    kpis = card["kpis"]
    assert isinstance(kpis, list)
    assert [
        {k: line[k] for k in ("id", "dimension", "weight", "result", "score")} for line in kpis
    ] == [
        {"id": "1.1", "dimension": 1, "weight": 40, "result": 72, "score": "3.4000"},
        {"id": "1.2", "dimension": 1, "weight": 35, "result": 7, "score": "2.5000"},
        {"id": "2.1", "dimension": 2, "weight": 25, "result": 3.3333, "score": "3.3333"},
    ]
    assert card["dimensions"] == {"1": "2.9800", "2": "3.3333"}
    assert card["composite"] == "3.0683"
    assert card["late_business_days"] == 3
    assert card["penalty"] == "0.1500"
    # 3.0683 - 0.1500 = 2.9183: below the 3.0000 line, so no tier
    assert card["final"] == "2.9183"
    assert card["tier"] is None
    steps = card["steps"]
    assert isinstance(steps, list)
    assert (
        "1.1: result 72 between level 3 (70) and level 4 (75): 3 + (72 - 70) / (75 - 70) = 3.4000"
        in steps
    )
    assert "composite: (40 x 3.4000 + 35 x 2.5000 + 25 x 3.3333) / 100 = 3.0683" in steps


def test_floor() -> None:
    # result 50 is below level 1 -> 1.0000; composite 1.0000; 3 days late -> 1.0000 - 0.1500
    # = 0.8500; a floor of 1.0000 lifts it back to 1.0000, without a floor it stays 0.8500
    floored = score_card("TH-58", [HIGH], {"1.1": 50}, 3, PER_DAY, FLOOR_RULES)
    assert (floored["composite"], floored["penalty"], floored["final"]) == (
        "1.0000",
        "0.1500",
        "1.0000",
    )
    plain = score_card("TH-58", [HIGH], {"1.1": 50}, 3, PER_DAY, RULES)
    assert plain["final"] == "0.8500"
    # above the floor the floor changes nothing: 3.4000 - 0.1500 = 3.2500
    above = score_card("TH-58", [HIGH], {"1.1": 72}, 3, PER_DAY, FLOOR_RULES)
    assert above["final"] == "3.2500"


def test_tier_edges() -> None:
    assert tier_for(D("3.0000"), TIERS) == "ผ่าน (pass)"  # exactly the min
    assert tier_for(D("2.9999"), TIERS) is None
    assert tier_for(D("4.0000"), TIERS) == "ดีเด่น (excellent)"
    assert tier_for(D("5.0000"), TIERS) == "ดีเด่น (excellent)"
    assert tier_for(None, TIERS) is None
    assert tier_for(D("4.5"), ()) is None
    # result 70 is level 3 -> 3.0000; on time -> final 3.0000 == min of the pass tier
    on_time = score_card("TH-51", [HIGH], {"1.1": 70}, 0, PER_DAY, RULES)
    assert (on_time["final"], on_time["tier"]) == ("3.0000", "ผ่าน (pass)")
    # one day late: 3.0000 - 0.0500 = 2.9500 -> no tier
    late = score_card("TH-51", [HIGH], {"1.1": 70}, 1, PER_DAY, RULES)
    assert (late["final"], late["tier"]) == ("2.9500", None)


def test_score_card_null_until_known() -> None:
    empty = score_card("TH-52", None, None, None, PER_DAY, RULES)
    assert empty["kpis"] == [] and empty["dimensions"] is None
    for key in ("composite", "late_business_days", "penalty", "final", "tier"):
        assert empty[key] is None, key
    assert score_card("TH-52", [], None, 0, PER_DAY, RULES)["kpis"] == []

    no_results = score_card("TH-52", [A, B, C], None, None, PER_DAY, RULES)
    kpis = no_results["kpis"]
    assert isinstance(kpis, list)
    assert [(line["result"], line["score"]) for line in kpis] == [(None, None)] * 3
    assert no_results["dimensions"] == {"1": None, "2": None}
    assert (no_results["composite"], no_results["final"], no_results["tier"]) == (None,) * 3

    # only dimension 2 complete: its score is known, the composite is not
    partial = score_card("TH-52", [A, B, C], {"2.1": 3.3333}, 0, PER_DAY, RULES)
    assert partial["dimensions"] == {"1": None, "2": "3.3333"}
    assert (partial["composite"], partial["penalty"], partial["final"]) == (
        None,
        "0.0000",
        None,
    )

    # results known, SAR 12 still unknown: penalty and final wait for it
    waiting = score_card("TH-52", [HIGH], {"1.1": 72}, None, PER_DAY, RULES)
    assert (waiting["composite"], waiting["penalty"], waiting["final"]) == (
        "3.4000",
        None,
        None,
    )
    # a waived SAR 12 is passed as 0 days
    waived = score_card("TH-52", [HIGH], {"1.1": 72}, 0, PER_DAY, RULES)
    assert (waived["penalty"], waived["final"]) == ("0.0000", "3.4000")
    # a cycle that penalises nothing
    free = score_card("TH-52", [HIGH], {"1.1": 72}, None, None, RULES)
    assert (free["penalty"], free["final"], free["tier"]) == ("0.0000", "3.4000", "ผ่าน (pass)")


# --- properties ----------------------------------------------------------------------------

increasing_levels = st.lists(
    st.integers(min_value=-1000, max_value=1000), min_size=5, max_size=5, unique=True
).map(lambda xs: tuple(sorted(xs)))
results = st.one_of(
    st.integers(min_value=-2000, max_value=2000),
    st.floats(min_value=-2000, max_value=2000, allow_nan=False, allow_infinity=False),
)


@given(increasing_levels, results, results)
def test_score_never_decreases_when_a_higher_is_better_result_improves(
    levels: tuple[int, ...], r1: int | float, r2: int | float
) -> None:
    kpi = make(levels=levels)
    low, high = sorted((r1, r2))
    assert D(1) <= kpi_score(kpi, low) <= kpi_score(kpi, high) <= D(5)
    lower = make(levels=tuple(reversed(levels)), direction="lower")
    assert kpi_score(lower, low) >= kpi_score(lower, high)


scores = st.integers(min_value=10_000, max_value=50_000).map(lambda n: D(n) / 10_000)


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=100), scores), min_size=1))
def test_composite_lies_between_the_smallest_and_largest_score(
    items: list[tuple[int, Decimal]],
) -> None:
    scored = [(make(f"k{i}", weight=w), s) for i, (w, s) in enumerate(items)]
    value = composite(scored)
    assert min(s for _, s in items) <= value <= max(s for _, s in items)
    assert value == value.quantize(D("0.0001"))


@given(st.integers(min_value=0, max_value=400))
def test_penalty_is_five_hundredths_per_late_day(days: int) -> None:
    assert late_penalty(days, PER_DAY) == D("0.05") * days
