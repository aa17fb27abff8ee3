"""``rubrong validate``: every problem of a cycle file at once, as ``FILE:LINE: message``.

Each test edits a small valid cycle file in one place and checks the problem is reported on the
line it concerns. Expected lines are found by searching the edited text, never hard-coded.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import CYCLE_2554, Cli, Result

BASE = """\
# A small valid cycle file: 2 groups, 3 provinces, 1 agency.
[cycle]
id = "2554"
name_th = "รอบทดสอบ"
starts = "2010-10-01"
ends = "2011-09-30"
timezone = "Asia/Bangkok"
opdc_email = "opdc@opdc.example"
opdc_supervisor_email = "boss@opdc.example"

[calendar]
holidays = "TH"
deadline_policy = "keep"
remove = [
    { date = "2011-05-02", name = "not a government holiday" },
]

[notifications]
reminders = [14, 7, 1]
overdue_after = 1

[scoring]
dimension_weights = { "1" = 50, "2" = 20, "3" = 10, "4" = 20 }
approved_kpis = ["1.1", "2.1"]
tiers = [
    { name = "ดี", min = "3.5000" },
    { name = "ผ่าน", min = "3.0000" },
]

[[milestones]]
id = "propose_kpis"
kind = "deliverable"
actor = "organisation"
title_th = "เสนอตัวชี้วัด"
due = "2010-09-13"
event = "propose_kpis"

[[milestones]]
id = "sar6"
kind = "deliverable"
actor = "organisation"
title_th = "รายงาน 6 เดือน"
due = "2011-04-30"
event = "submit_sar6"
reminders = [7, 1]

[[milestones]]
id = "sar12"
kind = "deliverable"
actor = "organisation"
title_th = "รายงาน 12 เดือน"
due = "2011-10-31"
event = "submit_sar12"
penalty_per_business_day = "0.0500"

[[milestones]]
id = "change_requests"
kind = "cutoff"
actor = "organisation"
title_th = "วันสุดท้ายของคำขอเปลี่ยนแปลง"
due = "2011-03-31"

[[milestones]]
id = "consultation"
kind = "window"
actor = "opdc"
title_th = "ให้คำปรึกษา"
start = "2011-06-01"
due = "2011-06-30"

[[groups]]
id = "north-upper-1"
name_th = "ภาคเหนือตอนบน 1"
email = "office@north-upper-1.example"
supervisor_email = "boss@north-upper-1.example"
provinces = ["TH-50", "TH-58"]

[[groups]]
id = "north-upper-2"
name_th = "ภาคเหนือตอนบน 2"
email = "office@north-upper-2.example"
supervisor_email = "boss@north-upper-2.example"
provinces = [
    "TH-57",  # Chiang Rai
]

[[organisations]]
id = "TH-50"
kind = "province"
name_th = "เชียงใหม่"
email = "gov@th-50.example"
supervisor_email = "boss@th-50.example"

[[organisations]]
id = "TH-58"
kind = "province"
name_th = "แม่ฮ่องสอน"
email = "gov@th-58.example"
supervisor_email = "boss@th-58.example"

[[organisations]]
id = "TH-57"
kind = "province"
name_th = "เชียงราย"
email = "gov@th-57.example"
supervisor_email = "boss@th-57.example"

[[organisations]]
id = "dept-1"
kind = "agency"
name_th = "กรมทดสอบ"
email = "head@dept-1.example"
supervisor_email = "boss@dept-1.example"
"""

PROBLEM = re.compile(r"^(?P<file>.+):(?P<line>\d+): (?P<message>.+)$")


def edit(text: str, old: str, new: str) -> str:
    """``text`` with the one occurrence of ``old`` replaced by ``new``."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line(text: str, needle: str, nth: int = 0) -> int:
    """The 1-based line number of the ``nth`` line of ``text`` containing ``needle``."""
    found = [n for n, row in enumerate(text.splitlines(), start=1) if needle in row]
    assert len(found) > nth, f"{needle!r} found on lines {found}"
    return found[nth]


def milestone_line(text: str, ident: str) -> int:
    """The ``[[milestones]]`` header of the milestone with ``id = ident``."""
    id_line = line(text, f'id = "{ident}"')
    rows = text.splitlines()
    return max(n for n in range(1, id_line + 1) if rows[n - 1].startswith("[[milestones]]"))


def validate(cli: Cli, tmp_path: Path, text: str, name: str = "cycle.toml") -> Result:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return cli("validate", str(path))


def problems(result: Result, name: str = "cycle.toml") -> list[tuple[int, str]]:
    """``(line, message)`` of every stdout line, checking the ``FILE:LINE: message`` form."""
    out: list[tuple[int, str]] = []
    for row in result.out.splitlines():
        match = PROBLEM.match(row)
        assert match, f"not FILE:LINE: message: {row!r}"
        assert match["file"].endswith(name), row
        out.append((int(match["line"]), match["message"]))
    return out


def only_problem(cli: Cli, tmp_path: Path, text: str) -> tuple[int, str]:
    """Validate ``text``; it must have exactly one problem (exit 2); return it."""
    result = validate(cli, tmp_path, text)
    assert result.code == 2, (result.code, result.out, result.err)
    found = problems(result)
    assert len(found) == 1, found
    assert "1 problem" in result.err
    return found[0]


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


def test_reminder_on_or_after_the_due_date(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, "reminders = [7, 1]", "reminders = [7, 0]")
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "reminders = [7, 0]")
    assert "milestones[1].reminders" in message and "on or after the deadline" in message


def test_negative_reminder_in_the_notification_defaults(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, "reminders = [14, 7, 1]", "reminders = [\n    14,\n    -1,\n]")
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "-1,")
    assert "notifications.reminders" in message and "-1" in message


def test_unknown_event_name(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'event = "submit_sar6"', 'event = "submit_sar_6"')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "submit_sar_6")
    assert "unknown event 'submit_sar_6'" in message and "milestone sar6" in message


def test_duplicate_milestone_id(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'id = "sar12"', 'id = "sar6"')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, 'id = "sar6"', nth=1)
    assert message == "duplicate milestone id 'sar6'"


def test_group_and_organisation_with_the_same_id(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'id = "dept-1"', 'id = "north-upper-2"')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, 'id = "north-upper-2"', nth=1)
    assert "duplicate id 'north-upper-2'" in message and "groups[1]" in message


def test_two_organisations_with_the_same_id(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'id = "dept-1"', 'id = "TH-57"')
    text = edit(text, 'kind = "agency"', 'kind = "province"')
    result = validate(sqlite_cli, tmp_path, text)
    assert result.code == 2
    found = problems(result)
    assert (line(text, 'id = "TH-57"', nth=1), "duplicate id 'TH-57' (also organisations[2])") in (
        found
    )


def test_province_in_two_groups(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, '    "TH-57",  # Chiang Rai\n', '    "TH-57",  # Chiang Rai\n    "TH-50",\n')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, '    "TH-50",')
    assert message == "province TH-50 is in two groups: north-upper-1 and north-upper-2"


def test_province_listed_twice_in_one_group(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, '["TH-50", "TH-58"]', '["TH-50", "TH-58", "TH-50"]')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, '"TH-58", "TH-50"]')
    assert message == "province TH-50 is listed twice in group north-upper-1"


def test_province_in_no_group(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, '["TH-50", "TH-58"]', '["TH-50"]')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, 'id = "TH-58"')
    assert message == "province TH-58 is in no group"


def test_unknown_province_code(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'id = "TH-57"', 'id = "TH-99"')
    text = edit(text, '"TH-57",  # Chiang Rai', '"TH-99",  # no such province')
    result = validate(sqlite_cli, tmp_path, text)
    assert result.code == 2
    assert problems(result) == [
        (line(text, '"TH-99",  #'), "unknown province code 'TH-99' in group north-upper-2"),
        (
            line(text, 'id = "TH-99"'),
            "unknown province code 'TH-99' (not an ISO 3166-2:TH code)",
        ),
    ]


def test_group_lists_a_province_that_is_not_an_organisation(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    text = edit(BASE, '["TH-50", "TH-58"]', '["TH-50", "TH-58", "TH-52"]')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "TH-52")
    assert "TH-52" in message and "not a province organisation" in message


def test_dimension_weights_must_add_up_to_100(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, '"4" = 20', '"4" = 25')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "dimension_weights")
    assert message == "scoring.dimension_weights add up to 105, not 100"


def test_empty_dimension_weights(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, '{ "1" = 50, "2" = 20, "3" = 10, "4" = 20 }', "{}")
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "dimension_weights")
    assert message == "scoring.dimension_weights add up to 0, not 100"


def test_dimension_weights_as_dotted_keys(sqlite_cli: Cli, tmp_path: Path) -> None:
    weights = "\n".join(f'dimension_weights."{d}" = {w}' for d, w in (("1", 60), ("2", 60)))
    text = edit(BASE, 'dimension_weights = { "1" = 50, "2" = 20, "3" = 10, "4" = 20 }', weights)
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, 'dimension_weights."1"')
    assert message == "scoring.dimension_weights add up to 120, not 100"


def test_timezone_must_be_bangkok(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'timezone = "Asia/Bangkok"', 'timezone = "Asia/Ho_Chi_Minh"')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "timezone")
    assert message == "cycle.timezone must be Asia/Bangkok, not 'Asia/Ho_Chi_Minh'"


def test_two_milestones_with_a_penalty(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(
        BASE,
        "reminders = [7, 1]\n",
        'reminders = [7, 1]\npenalty_per_business_day = "0.0100"\n',
    )
    text = edit(text, 'title_th = "รายงาน 12 เดือน"', 'title_th = "รายงาน 12 เดือน" # second')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    # The file order decides which one is "second": sar12's penalty line.
    assert number == line(text, 'penalty_per_business_day = "0.0500"')
    assert message == "only one milestone may carry a penalty (sar6 already does)"


def test_window_without_start(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'start = "2011-06-01"\n', "")
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == milestone_line(text, "consultation")
    assert message == "milestone consultation: a window needs a start date"


def test_window_that_starts_after_it_ends(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'start = "2011-06-01"', 'start = "2011-07-01"')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "start =")
    assert "starts after its due date" in message


def test_deliverable_without_event(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'event = "submit_sar12"\n', "")
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == milestone_line(text, "sar12")
    assert message == "milestone sar12: a deliverable needs an event"


def test_a_bad_kind_is_one_problem_not_three(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'kind = "window"', 'kind = "windw"')
    number, message = only_problem(sqlite_cli, tmp_path, text)
    assert number == line(text, "windw")
    assert "kind must be one of deliverable, cutoff, window" in message


def test_missing_milestone_id_is_named_by_position(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = edit(BASE, 'id = "sar12"\n', "")
    text = edit(text, 'event = "submit_sar12"\n', "")
    result = validate(sqlite_cli, tmp_path, text)
    assert problems(result) == [
        (milestone_line(text, "sar6") + 9, "missing required key milestones[2].id"),
        (milestone_line(text, "sar6") + 9, "milestone milestones[2]: a deliverable needs an event"),
    ]


def test_empty_default_reminders_mean_no_reminders(tmp_path: Path) -> None:
    from workflow.config.validate import parse_cycle

    text = edit(BASE, "reminders = [14, 7, 1]", "reminders = []")
    cycle = parse_cycle(text)
    assert cycle.notifications.reminders == ()
    reminders = {m.id: m.reminders for m in cycle.milestones}
    assert reminders["propose_kpis"] == ()
    assert reminders["sar6"] == (7, 1)


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
