"""KPI sets: every validation problem, collected at once; JSON round trip; the approved list."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from workflow.rules.kpis import (
    Kpi,
    KpiSetError,
    ScoringRules,
    kpis_to_json,
    off_list,
    parse_kpi_set,
    parse_results,
)

RULES = ScoringRules(
    dimension_weights=None,
    approved_kpis=frozenset({"1.1", "2.1"}),
    tiers=(),
    floor=None,
)
DIM_RULES = ScoringRules(
    dimension_weights={"1": Decimal(50), "2": Decimal(20), "3": Decimal(10), "4": Decimal(20)},
    approved_kpis=frozenset(),
    tiers=(),
    floor=None,
)


def kpi(kpi_id: str, dimension: int, weight: object, **extra: object) -> dict[str, object]:
    item: dict[str, object] = {
        "id": kpi_id,
        "dimension": dimension,
        "name_th": "ร้อยละของครัวเรือนที่มีรายได้เพิ่มขึ้น",
        "unit": "ร้อยละ",
        "direction": "higher",
        "weight": weight,
        "baseline": 70,
        "levels": [60, 65, 70, 75, 80],
    }
    item.update(extra)
    return item


def good_set() -> dict[str, object]:
    return {
        "kpis": [
            kpi("1.1", 1, 30),
            kpi("1.2", 1, 20),
            kpi("2.1", 2, 20),
            kpi("3.1", 3, 10, direction="lower", levels=[10, 8, 6, 4, 2.5]),
            kpi("4.1", 4, 20),
        ]
    }


def problems(data: object, rules: ScoringRules = RULES) -> list[str]:
    with pytest.raises(KpiSetError) as info:
        parse_kpi_set(data, rules)
    return info.value.problems


def with_first(**changes: object) -> dict[str, object]:
    data = good_set()
    items = data["kpis"]
    assert isinstance(items, list)
    items[0].update(changes)
    return data


def test_good_set_parses_with_and_without_dimension_weights() -> None:
    for rules in (RULES, DIM_RULES):
        kpis = parse_kpi_set(good_set(), rules)
        assert [k.id for k in kpis] == ["1.1", "1.2", "2.1", "3.1", "4.1"]
    first = parse_kpi_set(good_set(), RULES)[0]
    assert first == Kpi(
        id="1.1",
        dimension=1,
        name_th="ร้อยละของครัวเรือนที่มีรายได้เพิ่มขึ้น",
        unit="ร้อยละ",
        direction="higher",
        weight=30,
        baseline=70,
        levels=(60, 65, 70, 75, 80),
        definition=None,
    )


def test_optional_keys_and_extra_top_level_keys() -> None:
    data = good_set()
    items = data["kpis"]
    assert isinstance(items, list)
    del items[0]["baseline"]
    items[1]["baseline"] = None
    items[2]["definition"] = "จำนวนครัวเรือน ÷ ครัวเรือนทั้งหมด × 100"
    data["reason"] = "external"  # request_change data carries more than kpis
    kpis = parse_kpi_set(data, RULES)
    assert kpis[0].baseline is None and kpis[1].baseline is None
    assert kpis[2].definition == "จำนวนครัวเรือน ÷ ครัวเรือนทั้งหมด × 100"


@pytest.mark.parametrize("data", [None, [], "kpis", {"kpis": []}, {"kpis": {}}, {}])
def test_not_a_kpi_set(data: object) -> None:
    (problem,) = problems(data)
    assert "kpis" in problem


def test_kpi_not_an_object() -> None:
    data = good_set()
    items = data["kpis"]
    assert isinstance(items, list)
    items.append("1.9")
    assert 'KPI #6: must be an object, got "1.9"' in problems(data)


def test_unknown_and_missing_keys() -> None:
    data = with_first(target=75)
    items = data["kpis"]
    assert isinstance(items, list)
    del items[0]["unit"]
    got = problems(data)
    assert 'KPI "1.1": unknown key "target"' in got
    assert 'KPI "1.1": missing unit' in got


@pytest.mark.parametrize("bad", ["", 11, None, "  "])
def test_id_must_be_a_non_empty_string(bad: object) -> None:
    got = problems(with_first(id=bad))
    assert any("KPI #1: id must be a non-empty string" in p for p in got)


def test_duplicate_ids() -> None:
    data = good_set()
    items = data["kpis"]
    assert isinstance(items, list)
    items[4]["id"] = "1.2"
    assert 'KPI "1.2": duplicate id (KPIs #2 and #5)' in problems(data)


@pytest.mark.parametrize("bad", [True, "1", 1.0, None])
def test_dimension_must_be_an_integer(bad: object) -> None:
    got = problems(with_first(dimension=bad))
    assert any(p.startswith('KPI "1.1": dimension must be an integer') for p in got)


def test_dimension_range_without_weights() -> None:
    assert 'KPI "1.1": dimension must be 1, 2, 3 or 4, got 5' in problems(with_first(dimension=5))


def test_dimension_must_be_a_key_of_dimension_weights() -> None:
    rules = ScoringRules({"1": Decimal(60), "2": Decimal(40)}, frozenset(), (), None)
    data = {"kpis": [kpi("1.1", 1, 60), kpi("3.1", 3, 40)]}
    got = problems(data, rules)
    assert got == ['KPI "3.1": dimension 3 is not one of the cycle\'s dimensions (1, 2)']


@pytest.mark.parametrize("bad", ["up", None, "Higher"])
def test_direction(bad: object) -> None:
    got = problems(with_first(direction=bad))
    assert any(p.startswith('KPI "1.1": direction must be higher or lower') for p in got)


@pytest.mark.parametrize("bad", [0, -5, True, "30", None, float("nan"), float("inf")])
def test_weight_must_be_a_positive_number(bad: object) -> None:
    got = problems(with_first(weight=bad))
    assert any(p.startswith('KPI "1.1": weight must be a positive number') for p in got)
    # the sum check is skipped while a weight is itself wrong
    assert not any("sum to" in p for p in got)


def test_weights_sum_to_100() -> None:
    assert problems(with_first(weight=25)) == ["KPI weights sum to 95, not 100"]


def test_weights_sum_compared_exactly_as_decimals() -> None:
    # 0.1 + 0.2 + 99.7 == 100 as decimals, though not as binary floats
    data = {
        "kpis": [kpi("a", 1, 0.1), kpi("b", 2, 0.2), kpi("c", 3, 99.7)],
    }
    assert len(parse_kpi_set(data, RULES)) == 3


def test_dimension_weights_sums() -> None:
    data = with_first(dimension=2)  # dimension 1: 20 (not 50); dimension 2: 50 (not 20)
    got = problems(data, DIM_RULES)
    assert got == [
        "dimension 1: KPI weights sum to 20, but the cycle weights dimension 1 at 50",
        "dimension 2: KPI weights sum to 50, but the cycle weights dimension 2 at 20",
    ]


def test_dimension_weighted_zero_may_be_absent() -> None:
    rules = ScoringRules(
        {"1": Decimal(70), "2": Decimal(30), "3": Decimal(0)}, frozenset(), (), None
    )
    data = {"kpis": [kpi("1.1", 1, 70), kpi("2.1", 2, 30)]}
    assert len(parse_kpi_set(data, rules)) == 2


def test_dimension_with_weight_but_no_kpis() -> None:
    data = good_set()
    items = data["kpis"]
    assert isinstance(items, list)
    items[4]["dimension"] = 1  # dimension 4 left empty
    got = problems(data, DIM_RULES)
    assert "dimension 4: KPI weights sum to 0, but the cycle weights dimension 4 at 20" in got


@pytest.mark.parametrize(
    ("levels", "needle"),
    [
        ([60, 65, 70, 75], "exactly 5 numbers (scores 1..5), got 4"),
        ([60, 65, 70, 75, 80, 85], "exactly 5 numbers (scores 1..5), got 6"),
        ("60-80", "levels must be a list of 5 numbers"),
        ([60, 65, "70", 75, 80], "levels must be finite numbers (level 3 is not)"),
        ([60, 65, float("nan"), 75, float("inf")], "(level 3, 5 is not)"),
        ([60, 65, True, 75, 80], "(level 3 is not)"),
        ([60, 65, 65, 75, 80], "strictly increasing for direction higher"),
        ([80, 75, 70, 65, 60], "strictly increasing for direction higher"),
    ],
)
def test_levels(levels: object, needle: str) -> None:
    got = problems(with_first(levels=levels))
    assert any(p.startswith('KPI "1.1": ') and needle in p for p in got), got


def test_levels_of_a_lower_kpi_must_decrease() -> None:
    got = problems(with_first(direction="lower"))
    assert got == [
        'KPI "1.1": levels must be strictly decreasing for direction lower, '
        "got [60, 65, 70, 75, 80]"
    ]


@pytest.mark.parametrize("bad", ["", "   ", None, 5])
def test_name_th(bad: object) -> None:
    got = problems(with_first(name_th=bad))
    assert any(p.startswith('KPI "1.1": name_th must be a non-empty string') for p in got)


def test_unit_must_be_a_string_but_may_be_empty() -> None:
    assert problems(with_first(unit=5)) == ['KPI "1.1": unit must be a string, got 5']
    assert parse_kpi_set(with_first(unit=""), RULES)[0].unit == ""


@pytest.mark.parametrize("bad", ["70", True, float("nan"), [70]])
def test_baseline(bad: object) -> None:
    got = problems(with_first(baseline=bad))
    assert any(p.startswith('KPI "1.1": baseline must be a number or null') for p in got)


def test_definition_must_be_text() -> None:
    got = problems(with_first(definition=3))
    assert got == ['KPI "1.1": definition must be a string or null, got 3']


def test_every_problem_at_once_and_the_message() -> None:
    data = good_set()
    items = data["kpis"]
    assert isinstance(items, list)
    items[0].update(direction="sideways", colour="red")
    items[2].update(weight=-1)
    items[3].update(name_th="")
    with pytest.raises(KpiSetError) as info:
        parse_kpi_set(data, RULES)
    assert info.value.problems == [
        'KPI "1.1": unknown key "colour"',
        'KPI "1.1": direction must be higher or lower, got "sideways"',
        'KPI "2.1": weight must be a positive number, got -1',
        'KPI "3.1": name_th must be a non-empty string, got ""',
    ]
    assert str(info.value) == "; ".join(info.value.problems)
    assert isinstance(info.value, ValueError)


def test_json_round_trip_keeps_numbers_as_given() -> None:
    data = good_set()
    items = data["kpis"]
    assert isinstance(items, list)
    items[0]["definition"] = "นิยาม"
    kpis = parse_kpi_set(data, RULES)
    out = kpis_to_json(kpis)
    assert json.loads(json.dumps(out)) == out
    assert parse_kpi_set({"kpis": out}, RULES) == kpis
    assert out[3]["levels"] == [10, 8, 6, 4, 2.5]
    assert "definition" in out[0] and "definition" not in out[1]
    expected = copy.deepcopy(items)
    assert out == expected


def test_off_list() -> None:
    kpis = parse_kpi_set(good_set(), RULES)
    assert off_list(kpis, RULES) == ["1.2", "3.1", "4.1"]
    everything = ScoringRules(None, frozenset(k.id for k in kpis), (), None)
    assert off_list(kpis, everything) == []


def test_parse_results() -> None:
    kpis = parse_kpi_set(good_set(), RULES)
    results = {"4.1": 77, "1.1": 72.5, "1.2": 60, "2.1": 80, "3.1": 7}
    got = parse_results({"results": results}, kpis)
    assert list(got) == ["1.1", "1.2", "2.1", "3.1", "4.1"] and got["1.1"] == 72.5
    with pytest.raises(KpiSetError) as info:
        parse_results({"results": {"1.1": "72", "9.9": 1, "1.2": float("nan")}}, kpis)
    assert info.value.problems == [
        'KPI "1.1": result must be a finite number, got "72"',
        'results: "9.9" is not a KPI of this agreement',
        'KPI "1.2": result must be a finite number, got NaN',
        'results missing for KPI "2.1", "3.1", "4.1"',
    ]
    assert parse_results({"results": {"1.1": 70}}, kpis, require_all=False) == {"1.1": 70}
    with pytest.raises(KpiSetError):
        parse_results({"results": [1, 2]}, kpis)
