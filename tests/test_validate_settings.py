"""``rubrong validate``: the rules of the cycle settings and milestones (``[cycle]``,
``[notifications]``, ``[scoring]``, ``[[milestones]]``): reminders, events, ids, dimension
weights, the time zone, the penalty, windows and deliverables.

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
    milestone_line,
    only_problem,
    problems,
    validate,
)


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
