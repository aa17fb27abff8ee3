"""``rubrong validate``: the rules of ``[[groups]]`` and ``[[organisations]]``: ids, provinces
in groups, province codes.

Each test edits a small valid cycle file (``tests.support.validate.BASE``) in one place and
checks the problem is reported on the line it concerns. Expected lines are found by searching the
edited text, never hard-coded.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli
from tests.support.validate import (
    BASE,
    edit,
    line,
    only_problem,
    problems,
    validate,
)


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
