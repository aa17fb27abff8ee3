"""Notices on working days: ``notifications.non_business_days`` moves a reminder, overdue notice
or escalation dated on a receiver's weekend or holiday; the default keeps CONTRACT's dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tests.conftest import CYCLE_2554, Cli
from workflow.config.validate import parse_cycle
from workflow.rules.calendar import business_calendar
from workflow.rules.timeutil import bangkok_date
from workflow.usecases.tick import instants

KEEP = 'non_business_days = "keep"'
# A holiday of Chiang Mai only, on the day sar6's 7-day reminder moves to (Fri 22 Apr 2011).
TH50_HOLIDAY = 'add = [{ date = "2011-04-22", name = "วันหยุดเชียงใหม่", scope = ["TH-50"] }]'


def _cycle_text(policy: str, *, th50_holiday: bool = False) -> str:
    text = CYCLE_2554.read_text(encoding="utf-8")
    assert KEEP in text and "add = []" in text
    text = text.replace(KEEP, f'non_business_days = "{policy}"')
    if th50_holiday:
        text = text.replace("add = []", TH50_HOLIDAY, 1)
    return text


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cycle.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _notices(cycle_text: str) -> list[Any]:
    cycle = parse_cycle(cycle_text, "cycle.toml")
    return [i for i in instants(cycle) if i.what in ("reminder", "overdue", "escalation")]


def test_by_default_notices_keep_the_contract_dates() -> None:
    days = {i.key: bangkok_date(i.at) for i in _notices(_cycle_text("keep"))}
    # sar6 is due Sat 30 Apr 2011: its 14-day reminder stays on Sat 16 Apr, as CONTRACT says.
    assert days["sar6/2011-04-30/reminder/14"] == dt.date(2011, 4, 16)
    assert days["sar6/2011-04-30/reminder/1"] == dt.date(2011, 4, 29)


def test_previous_puts_every_notice_on_a_business_day_of_its_receiver() -> None:
    text = _cycle_text("previous", th50_holiday=True)
    cycle = parse_cycle(text, "cycle.toml")
    calendar = business_calendar(cycle.calendar)
    parties = cycle.parties()
    checked = 0
    for instant in _notices(text):
        day = bangkok_date(instant.at)
        milestone = instant.milestone
        assert milestone.due is not None
        receivers = [
            p
            for p in parties
            if milestone.applies(p.kind)
            and (instant.only is None or p.id in instant.only)
            and p.id not in instant.besides
        ]
        if milestone.actor != "organisation":
            assert calendar.is_business_day(day, cycle.calendar.receiver_scope), instant.key
            continue
        for party in receivers:
            scope = party.id if party.kind == "province" else ""
            assert calendar.is_business_day(day, scope), (instant.key, party.id, day)
            checked += 1
        if instant.what == "reminder":
            assert day <= milestone.due, instant.key
        else:
            assert day > milestone.due, instant.key
    assert checked > 93 * 20


def test_a_holiday_of_one_province_splits_its_notice_off(sqlite_cli: Cli, tmp_path: Path) -> None:
    cli = sqlite_cli
    path = _write(tmp_path, _cycle_text("previous", th50_holiday=True))
    assert cli("load", str(path)).code == 0
    # Sat 23 Apr → Fri 22 Apr for everyone but Chiang Mai, whose Friday is a holiday: Thu 21.
    assert cli("tick", "--now", "2011-04-21T09:00", "--no-send").code == 0
    rows = _outbox(cli, "sar6", "reminder")
    sevens = [r for r in rows if r["key"].endswith("/reminder/7")]
    assert [r["agreement"] for r in sevens] == ["TH-50"]
    assert sevens[0]["key"] == "2554/TH-50/sar6/2011-04-30/reminder/7"  # the key is stable
    assert sevens[0]["send_at"].startswith("2011-04-21T09:00")

    assert cli("tick", "--now", "2011-04-22T09:00", "--no-send").code == 0
    sevens = [r for r in _outbox(cli, "sar6", "reminder") if r["key"].endswith("/reminder/7")]
    assert len(sevens) == 93  # 75 provinces + 18 groups, each once
    others = {r["send_at"][:16] for r in sevens if r["agreement"] != "TH-50"}
    assert others == {"2011-04-22T09:00"}

    again = cli("tick", "--now", "2011-04-22T09:00", "--no-send", "--json")
    assert again.json()["enqueued"] == 0  # idempotent: the split instants are done once


def _outbox(cli: Cli, milestone: str, kind: str) -> list[dict[str, Any]]:
    result = cli("outbox", "--json")
    assert result.code == 0, result.err
    rows: list[dict[str, Any]] = result.json()
    return [r for r in rows if r["milestone"] == milestone and r["kind"] == kind]


def test_an_unknown_policy_is_a_config_problem_with_its_line(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    path = _write(tmp_path, _cycle_text("sometimes"))
    result = sqlite_cli("validate", str(path))
    assert result.code == 2
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "sometimes" in t)
    assert f"cycle.toml:{line}: notifications.non_business_days" in result.out
