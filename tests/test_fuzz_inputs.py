"""Bad input to the last byte (issue 13 item 6): exit 2, one short line, nothing written.

Plain tests pin each case found by fuzzing from outside; hypothesis then mutates cycle files,
``--data`` documents and scenario lines (fixed seeds, bounded examples) and checks that the
command never exits other than as CONTRACT.md says and never prints a traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CYCLE_2554, Cli, kpi_set
from workflow.rules.errors import BadInput
from workflow.rules.jsoninput import MAX_DEPTH, parse_json
from workflow.rules.scenario import parse_scenario

TEXT = CYCLE_2554.read_text(encoding="utf-8")
FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def one_short_line(err: str, limit: int = 300) -> str:
    """stderr must be exactly one line, short, and no traceback."""
    lines = err.splitlines()
    assert len(lines) == 1, err[:2000]
    assert "Traceback" not in err and len(lines[0]) <= limit, lines[0][:500]
    return lines[0]


def history_count(cli: Cli) -> int:
    result = cli("history", "--json")
    assert result.code == 0, result.err
    return len(result.json())


def write(tmp_path: Path, text: str | bytes, name: str = "cycle.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# -- the cycle file ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
def test_non_finite_dimension_weight_is_a_file_line_problem(
    sqlite_cli: Cli, tmp_path: Path, value: str
) -> None:
    text = TEXT.replace('"1" = 50', f'"1" = {value}').replace(
        'timezone = "Asia/Bangkok"', 'timezone = "Asia/Tokyo"'
    )
    result = sqlite_cli("validate", str(write(tmp_path, text)))
    assert result.code == 2, result.err
    line = 1 + text[: text.index(f'"1" = {value}')].count("\n")
    problems = result.out.splitlines()
    assert f"{tmp_path / 'cycle.toml'}:{line}: scoring.dimension_weights.1 must be a finite" in (
        result.out
    )
    assert any("Asia/Tokyo" in problem for problem in problems)  # reported with the others
    one_short_line(result.err)


def test_excess_precision_in_a_cycle_weight_is_refused(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = TEXT.replace('"1" = 50', '"1" = 50.000000000000000000001')
    result = sqlite_cli("validate", str(write(tmp_path, text)))
    assert result.code == 2
    assert "more precision than can be kept" in result.out
    assert (
        sqlite_cli("validate", str(write(tmp_path, TEXT.replace('"1" = 50', '"1" = 50.0')))).code
        == 0
    )


def test_invalid_utf8_is_reported_at_its_line_and_column(sqlite_cli: Cli, tmp_path: Path) -> None:
    lines = TEXT.encode("utf-8").split(b"\n")
    assert len(lines) > 365
    lines[364] = b"# \xe0\xb8\x81\xff bad byte"  # line 365: a Thai letter, then 0xff
    path = write(tmp_path, b"\n".join(lines))
    result = sqlite_cli("validate", str(path))
    assert result.code == 2
    assert (
        result.out
        == f"{path}:365: the file is not valid UTF-8 (byte 0xff at column 4: invalid start byte)\n"
    )


def test_deeply_nested_toml_is_a_problem_not_a_crash(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = TEXT + "\nextra = " + "[" * 3000 + "]" * 3000 + "\n"
    result = sqlite_cli("validate", str(write(tmp_path, text)))
    assert result.code == 2, result.err
    assert f":{text.count(chr(10))}: arrays or inline tables nested more than" in result.out
    one_short_line(result.err)


def test_a_huge_value_is_quoted_short(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = TEXT.replace('timezone = "Asia/Bangkok"', f'timezone = "{"x" * 1_000_000}"')
    result = sqlite_cli("validate", str(write(tmp_path, text)))
    assert result.code == 2
    assert len(result.out) < 400 and "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'…" in result.out


# -- fire --data, times, KPI numbers --------------------------------------------------------------


def fire(cli: Cli, event: str, data: str, who: str = "province:TH-50", *extra: str) -> Any:
    return cli("fire", "TH-50", event, "--as", who, "--data", data, *extra)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_deep_json_in_data_exits_2(loaded: Cli, depth: int) -> None:
    before = history_count(loaded)
    result = fire(loaded, "propose_kpis", "[" * depth + "]" * depth)
    assert result.code == 2
    assert "nested more than 64 levels" in one_short_line(result.err)
    assert history_count(loaded) == before


@pytest.mark.parametrize(
    ("weight", "needle"),
    [
        ("50.000000000000000000001", "more precision than can be kept"),
        ("1e400", "out of range"),
        ("NaN", "NaN is not a number JSON allows"),
        ("-Infinity", "-Infinity is not a number JSON allows"),
        ("49.9999999", "more than 6 decimal places"),
        ("1" + "0" * 40, "more than 30 digits"),
    ],
)
def test_kpi_numbers_are_read_exactly_or_refused(loaded: Cli, weight: str, needle: str) -> None:
    text = json.dumps(kpi_set(), ensure_ascii=False).replace('"weight": 50', f'"weight": {weight}')
    before = history_count(loaded)
    result = fire(loaded, "propose_kpis", text)
    assert result.code == 2, result.err
    assert needle in one_short_line(result.err)
    assert history_count(loaded) == before


def test_ordinary_weights_are_stored_as_given(loaded: Cli) -> None:
    kpis = kpi_set()
    kpis["kpis"][0]["weight"] = 37.5
    kpis["kpis"].append({**kpis["kpis"][0], "id": "1.2", "weight": 12.5})
    text = json.dumps(kpis, ensure_ascii=False)
    result = fire(loaded, "propose_kpis", text)
    assert result.code == 0, result.err
    data = loaded("history", "TH-50", "--json").json()[-1]["data"]
    assert [k["weight"] for k in data["kpis"]] == [37.5, 20, 10, 20, 12.5]
    assert json.dumps(data["kpis"][1]["weight"]) == "20"  # an integer stays an integer


def test_a_megabyte_direction_is_echoed_short(loaded: Cli) -> None:
    kpis = kpi_set()
    kpis["kpis"][0]["direction"] = "sideways" * 130_000
    result = fire(loaded, "propose_kpis", json.dumps(kpis))
    assert result.code == 2
    assert '"sidewayssidewayssidewayssidewayssideways"…' in one_short_line(result.err, 600)


@pytest.mark.parametrize(
    "args",
    [
        ("fire", "TH-50", "publish", "--as", "province:TH-50", "--at", ""),
        ("fire", "TH-50", "publish", "--as", "province:TH-50", "--at", "   "),
        ("history", "--as-of", ""),
        ("tick", "--now", " \t"),
    ],
)
def test_blank_times_exit_2(loaded: Cli, args: tuple[str, ...]) -> None:
    before = history_count(loaded)
    result = loaded(*args)
    assert result.code == 2
    assert "empty; expected an ISO 8601 time" in one_short_line(result.err)
    assert history_count(loaded) == before


# -- scenario lines ---------------------------------------------------------------------------


def test_deep_scenario_line_exits_2_before_anything_runs(sqlite_cli: Cli, tmp_path: Path) -> None:
    good = '{"at": "2010-09-10", "agreement": "TH-50", "event": "publish", "as": "own"}'
    deep = '{"at": "2010-09-10", "agreement": "TH-50", "event": "publish", "as": "own", "data": '
    deep += '{"a": ' * 1000 + "1" + "}" * 1001
    scenario = write(tmp_path, good + "\n" + deep + "\n", "scenario.jsonl")
    result = sqlite_cli("simulate", str(CYCLE_2554), "--scenario", str(scenario), "--no-send")
    assert result.code == 2
    assert (
        f"{scenario}:2: the line is not valid JSON: nested more than 64 levels"
        in one_short_line(result.err)
    )


def test_scenario_utf8_error_names_line_and_column(tmp_path: Path) -> None:
    from workflow.rules.scenario import read_scenario

    path = write(tmp_path, b"# one\n# two \xc3\x28\n", "s.jsonl")
    with pytest.raises(BadInput, match=r"s\.jsonl:2: not valid UTF-8 \(column 7\)"):
        read_scenario(path)


# -- fuzzers ----------------------------------------------------------------------------------

_LINES = TEXT.splitlines(keepends=True)
_JUNK = st.sampled_from(
    ["nan", "inf", "-inf", "1e400", '"', "[", "{", "]", "}", "=", "\x00", "\ud7ff", "é", "'''",
     "[[milestones]]", "0.1234567890123456789", "-0", "9" * 40, "\\u0000", "\n", "# c", "=="]
)  # fmt: skip


@st.composite
def mutated_cycle(draw: st.DrawFn) -> str:
    lines = list(_LINES)
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        line = lines[index]
        action = draw(st.sampled_from(["insert", "delete", "replace", "cut"]))
        position = draw(st.integers(0, len(line)))
        junk = draw(st.one_of(_JUNK, st.text(max_size=8)))
        if action == "insert":
            line = line[:position] + junk + line[position:]
        elif action == "delete":
            line = line[:position] + line[position + draw(st.integers(1, 5)) :]
        elif action == "replace":
            line = line[:position] + junk + line[position + len(junk) :]
        else:
            line = ""
        lines[index] = line
    return "".join(lines)


def test_fuzz_validate_exits_0_or_2_with_file_line_problems(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    seen: set[int] = set()

    @FUZZ
    @given(text=mutated_cycle())
    def check(text: str) -> None:
        path = tmp_path / "fuzz.toml"
        path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
        result = sqlite_cli("validate", str(path))
        seen.add(result.code)
        assert result.code in (0, 2), result.err
        assert "Traceback" not in result.err + result.out
        assert len(result.err.splitlines()) == 1, result.err
        if result.code == 2:
            for problem in result.out.splitlines():
                assert problem.startswith(f"{path}:"), problem
                assert problem[len(str(path)) + 1 :].split(":", 1)[0].isdigit(), problem

    check()
    assert 2 in seen


_JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.sampled_from(["higher", "lower", "1.1", "external"]),
)
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def event_data(draw: st.DrawFn) -> str:
    """A KPI set, results or change request with some values swapped for anything."""
    base: dict[str, Any] = kpi_set()
    base.update(
        reason="external", explanation="x", results={"1.1": 70, "2.1": 80, "3.1": 8, "4.1": 3.5}
    )
    for _ in range(draw(st.integers(0, 4))):
        kpi = draw(st.sampled_from(base["kpis"]))
        key = draw(st.sampled_from([*kpi, "extra"]))
        kpi[key] = draw(_JSON)
    if draw(st.booleans()):
        base[draw(st.sampled_from(["kpis", "reason", "results"]))] = draw(_JSON)
    text = json.dumps(base, ensure_ascii=False)
    raw = draw(
        st.sampled_from(["", "NaN", "1e999", "[" * 70, '"\\udc00"', "0.1000000000000000055511"])
    )
    if raw and draw(st.booleans()):
        text = text.replace('"weight": 50', f'"weight": {raw}', 1)
    return text


@pytest.mark.parametrize(
    ("event", "who"),
    [
        ("propose_kpis", "province:TH-50"),
        ("request_change", "province:TH-50"),
        ("evaluate", "evaluator"),
    ],
)
def test_fuzz_data_never_exits_1(sqlite_cli: Cli, event: str, who: str) -> None:
    cli = sqlite_cli
    assert cli("load", str(CYCLE_2554)).code == 0
    extra: tuple[str, ...] = ()
    if event != "propose_kpis":  # bring TH-50 to a state where the event reaches its data
        steps = [
            ("propose_kpis", "province:TH-50", json.dumps(kpi_set()), "2010-09-05"),
            ("agree", "admin", "{}", "2010-09-06"),
            ("sign", "admin", "{}", "2010-09-07"),
            ("waive", "admin", '{"milestone": "sar12", "reason": "test"}', "2010-09-08"),
        ]
        for step, role, data, at in steps:
            done = cli("fire", "TH-50", step, "--as", role, "--data", data, "--at", at)
            assert done.code == 0, done.err
        extra = ("--at", "2011-01-05")
    codes: set[int] = set()

    @FUZZ
    @given(text=event_data())
    def check(text: str) -> None:
        before = history_count(cli)
        result = fire(cli, event, text, who, *extra)
        codes.add(result.code)
        assert result.code in (0, 2, 3), result.err
        if result.code:
            one_short_line(result.err, 600)
        if result.code == 2:
            assert history_count(cli) == before

    check()
    assert 2 in codes and 0 in codes  # bad data was refused, and good data reached the end


@FUZZ
@given(
    line=st.one_of(
        st.text(max_size=40),
        _JSON.map(json.dumps),
        st.fixed_dictionaries(
            {"at": st.one_of(st.text(max_size=12), st.just("2010-09-10")), "agreement": _JSON_LEAF,
             "event": st.just("publish"), "as": st.sampled_from(["own", "admin", "", "x" * 100])}
        ).map(json.dumps),
        st.integers(0, 3000).map(lambda n: "[" * n + "]" * n),
    )
)  # fmt: skip
def test_fuzz_scenario_lines_parse_or_bad_input(line: str) -> None:
    try:
        actions = parse_scenario(line + "\n", "s.jsonl")
    except BadInput as exc:
        assert re.match(r"s\.jsonl:\d+: ", exc.message), exc.message  # splitlines' lines
        assert len(exc.message.splitlines()) == 1
        assert len(exc.message) < 400
    else:
        assert len(actions) <= len(line.splitlines())


def test_parse_json_depth_is_measured_without_recursion() -> None:
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "x") is not None
    assert parse_json('["[[[[", {"a": "{{{{"}]', "x") == ["[[[[", {"a": "{{{{"}]
    with pytest.raises(BadInput, match="nested more than 64"):
        parse_json("{" * 200_000, "x")
