"""On which day a notice goes: never on a weekend or holiday of the office that receives it.

A reminder, overdue notice or escalation is dated ``due ± N days`` (CONTRACT.md). With
``notifications.non_business_days = "previous"`` (or ``"next"``) in the cycle file, a notice
whose day is not a business day on the receiver's calendar moves to the previous (next)
business day instead; the default ``"keep"`` leaves every date as it is. Two limits apply: a
reminder never goes after its due day, and an overdue notice or escalation never goes on or
before the due day (it would announce a lateness that has not happened yet).

Only the national calendar and the provinces named in the cycle file's scoped additions and
removals can differ, so the days are computed per calendar, never per agreement: cheap at any
number of agreements, and independent of the parties (the stored settings carry none).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from workflow.config.model import Cycle, Milestone
from workflow.rules.calendar import BusinessCalendar

# Calendar scope of receivers that are not a province (groups, agencies): national holidays.
NATIONAL = ""


@dataclass(frozen=True)
class NoticeDay:
    """The receivers of one notice that get it on ``day`` (``None``: everyone not listed in
    another ``NoticeDay`` of the same notice)."""

    day: dt.date
    only: tuple[str, ...] | None


def receiver_scopes(cycle: Cycle, milestone: Milestone) -> tuple[str, tuple[str, ...]]:
    """The calendar of most receivers of ``milestone``'s notices, and the provinces whose own
    calendar may differ from it (those named in a scoped addition or removal of the cycle file).

    An organisation's deliverables mail the organisation: groups and agencies on the national
    calendar, a province on its own. The OPDC's own deliverables mail the OPDC, on the
    ``receiver_scope`` calendar.
    """
    if milestone.actor != "organisation":
        return cycle.calendar.receiver_scope, ()
    if not milestone.applies("province"):
        return NATIONAL, ()
    changes = (*cycle.calendar.add, *cycle.calendar.remove)
    return NATIONAL, tuple(sorted({code for change in changes for code in change.scope}))


def shifted(
    calendar: BusinessCalendar,
    nominal: dt.date,
    scope: str,
    *,
    notice: str,
    due: dt.date,
    policy: str,
) -> dt.date:
    """The business day a notice dated ``nominal`` goes on, for a receiver on ``scope``."""
    if policy == "keep" or calendar.is_business_day(nominal, scope):
        return nominal
    before = calendar.previous_business_day(nominal, scope)
    after = calendar.next_business_day(nominal, scope)
    if notice == "reminder":
        return before if policy == "previous" or after > due else after
    return before if policy == "previous" and before > due else after


def notice_days(
    calendar: BusinessCalendar,
    nominal: dt.date,
    scopes: tuple[str, tuple[str, ...]],
    *,
    notice: str,
    due: dt.date,
    policy: str,
) -> list[NoticeDay]:
    """The common day first (``only=None``), then one ``NoticeDay`` per other day, listing the
    provinces whose own calendar moves the notice there."""
    common_scope, provinces = scopes

    def day_for(scope: str) -> dt.date:
        return shifted(calendar, nominal, scope, notice=notice, due=due, policy=policy)

    common = day_for(common_scope)
    elsewhere: dict[dt.date, list[str]] = defaultdict(list)
    for province in provinces:
        day = day_for(province)
        if day != common:
            elsewhere[day].append(province)
    return [NoticeDay(common, None)] + [
        NoticeDay(day, tuple(codes)) for day, codes in sorted(elsewhere.items())
    ]


def others(days: Iterable[NoticeDay]) -> tuple[str, ...]:
    """Every organisation listed by id (those the common day does not concern)."""
    return tuple(sorted(org for day in days for org in (day.only or ())))
