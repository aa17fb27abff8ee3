"""``rubrong validate``: every problem of a cycle file at once, as ``FILE:LINE: message``; the
file as a whole: valid files, TOML syntax, unknown and missing keys, wrong types and shapes,
impossible dates, several problems at once, ``load`` refusing, a file not UTF-8 or missing.

Each test edits a small valid cycle file (``tests.support.validate.BASE``) in one place and
checks the problem is reported on the line it concerns. Expected lines are found by searching the
edited text, never hard-coded.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import CYCLE_2554, Cli
from tests.support.validate import (
    BASE,
    edit,
    line,
    milestone_line,
    only_problem,
    problems,
    validate,
)

# -- valid files ---------------------------------------------------------------------------


def test_the_base_file_is_valid(sqlite_cli: Cli, tmp_path: Path) -> None:
    result = validate(sqlite_cli, tmp_path, BASE)
    assert result.code == 0, result.out
    assert result.out == ""
    assert "valid" in result.err


def test_the_bundled_cycle_is_valid(sqlite_cli: Cli) -> None:
    result = sqlite_cli("validate", str(CYCLE_2554))
    assert result.code == 0, result.out
    assert result.out == ""
    assert "93 agreements" in result.err


def test_the_installed_command_exits_2_with_problems_on_stdout(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    """The real console script: exit code, stdout and stderr as a shell sees them."""
    path = tmp_path / "cycle.toml"
    path.write_text(edit(BASE, 'timezone = "Asia/Bangkok"', 'timezone = "UTC"'), encoding="utf-8")
    result = sqlite_cli.subprocess("validate", str(path))
    assert result.code == 2
    assert result.out == f"{path}:{line(path.read_text(), 'timezone')}: " + (
        "cycle.timezone must be Asia/Bangkok, not 'UTC'\n"
    )
    assert result.err.strip().endswith("1 problem(s)")
    assert "Traceback" not in result.err


# -- one kind of problem at a time -----------------------------------------------------------


def test_toml_syntax_error_is_reported_alone(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'timezone = "Asia/Bangkok"', 'timezone = "UTC"')  # would be a problem too
    text = edit(text, 'due = "2011-04-30"', 'due = "2011-04-30')  # unterminated string
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, 'due = "2011-04-30')
    assert "TOML syntax error" in message


def test_toml_syntax_error_duplicate_key(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'event = "submit_sar6"\n', 'event = "submit_sar6"\nevent = "x"\n')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, 'event = "x"')
    assert "TOML syntax error" in message


def test_toml_syntax_error_at_the_end_of_the_file(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = BASE + 'note = """never closed\n\n'
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == len(text.splitlines())
    assert "TOML syntax error" in message and "end of document" in message


def test_unknown_key_in_a_milestone(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'event = "submit_sar6"\n', 'event = "submit_sar6"\ncolour = "red"\n')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "colour")
    assert "unknown key milestones[1].colour" in message


def test_unknown_top_level_table(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = BASE + '\n[extras]\nnote = "x"\n'
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "[extras]")
    assert "unknown key extras" in message


def test_unknown_key_in_an_inline_table(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, '{ name = "ผ่าน", min = "3.0000" }', '{ name = "ผ่าน", min = "3.0000", x = 1 }')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "x = 1")
    assert "scoring.tiers[1].x" in message


def test_missing_required_key_is_reported_on_its_table(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'title_th = "รายงาน 6 เดือน"\n', "")
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == milestone_line(text, "sar6")
    assert "missing required key milestones[1].title_th" in message


def test_missing_required_key_of_cycle_and_organisation(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'timezone = "Asia/Bangkok"\n', "")
    text = edit(text, 'email = "gov@th-58.example"\n', "")
    result = validate(sqlite_cli, tmp_path, text)
    assert result.code == 2
    assert problems(result) == [
        (line(text, "[cycle]"), "missing required key cycle.timezone"),
        (line(text, 'id = "TH-58"') - 1, "missing required key organisations[1].email"),
    ]


def test_missing_cycle_table_is_one_problem(sqlite_cli: Cli, tmp_path: Path) -> None:
    rest = BASE.split("[calendar]")[1]
    number, message = only_problem(sqlite_cli, tmp_path, "[calendar]" + rest)
    assert number == 1
    assert message == "missing required key cycle"


def test_wrong_types(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, "overdue_after = 1", 'overdue_after = "1"')
    text = edit(text, 'due = "2011-06-30"', "due = 2011-06-30")  # a TOML date, not a string
    text = edit(text, 'provinces = ["TH-50", "TH-58"]', 'provinces = "TH-50, TH-58"')
    text = edit(text, '"3" = 10', '"3" = "10"')
    result = validate(sqlite_cli, tmp_path, text)
    assert result.code == 2
    found = problems(result)
    assert (line(text, "overdue_after"), "notifications.overdue_after must be a whole number") in (
        found
    )
    assert (line(text, "due = 2011-06-30"), "milestones[4].due must be a string") in found
    assert (line(text, "provinces = "), "groups[0].provinces must be an array") in found
    assert (
        line(text, "dimension_weights"),
        "scoring.dimension_weights.3 must be a number",
    ) in found


def test_not_a_table(sqlite_cli: Cli, tmp_path: Path) -> None:
    # A top-level key must come before the first table header.
    body = edit(BASE, "[notifications]\nreminders = [14, 7, 1]\noverdue_after = 1\n", "")
    text = "notifications = 3\n" + body
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert (number, message) == (line(text, "notifications = 3"), "notifications must be a table")


def test_sections_of_the_wrong_shape_do_not_crash(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = "groups = 3\norganisations = [1]\n" + BASE.split("[[groups]]")[0]
    result = validate(sqlite_cli, tmp_path, text)
    assert result.code == 2, result.err
    assert problems(result) == [
        (line(text, "groups = 3"), "groups must be an array"),
        (line(text, "organisations = [1]"), "organisations[0] must be a table"),
    ]


def test_impossible_date(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'due = "2011-03-31"', 'due = "2011-02-30"')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "2011-02-30")
    assert message == "milestones[3].due: impossible date '2011-02-30'"


def test_malformed_dates(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'starts = "2010-10-01"', 'starts = "2010-10-1"')
    text = edit(text, 'date = "2011-05-02"', 'date = "2011-13-02"')
    result = validate(sqlite_cli, tmp_path, text)
    assert problems(result) == [
        (line(text, "starts"), "cycle.starts: impossible date '2010-10-1'"),
        (line(text, "2011-13-02"), "calendar.remove[0].date: impossible date '2011-13-02'"),
    ]


# -- everything at once ------------------------------------------------------------------------


def test_several_problems_are_all_listed_in_line_order(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'timezone = "Asia/Bangkok"', 'timezone = "UTC"')
    text = edit(text, '"4" = 20', '"4" = 30')
    text = edit(text, 'due = "2011-03-31"', 'due = "2011-02-30"')
    text = edit(text, "reminders = [7, 1]", "reminders = [7, 0]")
    text = edit(text, 'event = "submit_sar12"', 'event = "submit_sar13"')
    text = edit(text, 'start = "2011-06-01"\n', 'start = "2011-06-01"\nnote = "x"\n')
    text = edit(text, '"TH-57",  # Chiang Rai', '"TH-57", "TH-58",')
    text = edit(text, 'id = "dept-1"', 'id = "north-upper-1"')
    text = edit(text, 'name_th = "เชียงใหม่"\n', "")
    result = validate(sqlite_cli, tmp_path, text)
    assert result.code == 2
    found = problems(result)
    expected = [
        (line(text, "timezone"), "cycle.timezone must be Asia/Bangkok"),
        (line(text, "dimension_weights"), "add up to 110, not 100"),
        (line(text, "reminders = [7, 0]"), "milestones[1].reminders"),
        (line(text, "submit_sar13"), "unknown event 'submit_sar13'"),
        (line(text, "2011-02-30"), "impossible date '2011-02-30'"),
        (line(text, 'note = "x"'), "unknown key milestones[4].note"),
        (line(text, '"TH-57", "TH-58"'), "province TH-58 is in two groups"),
        (line(text, 'id = "TH-50"') - 1, "missing required key organisations[0].name_th"),
        (line(text, 'id = "north-upper-1"', nth=1), "duplicate id 'north-upper-1'"),
    ]
    assert len(found) == len(expected), found
    for (number, fragment), (got_line, got_message) in zip(expected, found, strict=True):
        assert (number, fragment in got_message) == (got_line, True), (fragment, got_message)
    assert [number for number, _ in found] == sorted(number for number, _ in found)
    assert f"{len(expected)} problem(s)" in result.err
    assert result.err.count("\n") == 1  # the summary is the one line on stderr


def test_load_refuses_an_invalid_file_and_lists_its_problems(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    text = edit(BASE, 'timezone = "Asia/Bangkok"', 'timezone = "UTC"')
    text = edit(text, 'event = "submit_sar6"', 'event = "nope"')
    path = tmp_path / "cycle.toml"
    path.write_text(text, encoding="utf-8")
    result = sqlite_cli("load", str(path))
    assert result.code == 2
    assert len(problems(result)) == 2
    status = sqlite_cli("status", "--json")
    assert status.code == 2 and "no cycle is loaded" in status.err


def test_not_utf8_and_missing_file(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "cycle.toml"
    path.write_bytes(BASE.replace("รอบทดสอบ", "x").encode() + b"\n# \xff\xfe latin\n")
    result = sqlite_cli("validate", str(path))
    assert result.code == 2
    assert problems(result)[0][1].startswith("the file is not valid UTF-8")
    missing = sqlite_cli("validate", str(tmp_path / "nope.toml"))
    assert missing.code == 2
    assert "no such file" in missing.err
