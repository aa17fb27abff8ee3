"""The business calendar: Thai government holidays plus the cycle file's corrections.

``late_business_days`` is the one place that counts late days. A day is a business day when it
is a weekday and not a holiday on the calendar of the given province (ISO 3166-2:TH code); the
cycle file can add or remove days everywhere or only for a list of provinces.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from functools import lru_cache
from typing import Protocol

from workflow.config.model import CalendarConfig

_ONE_DAY = dt.timedelta(days=1)


class Calendar(Protocol):
    """What the engine needs from a business calendar."""

    def is_business_day(self, day: dt.date, scope: str) -> bool:
        """Whether ``day`` is a working day on the calendar of province ``scope``."""
        ...

    def late_business_days(self, due: dt.date, arrived: dt.date, scope: str) -> int:
        """Business days d with due < d <= arrived."""
        ...


class BusinessCalendar:
    """``holidays`` (categories public + government) with scoped additions and removals."""

    def __init__(self, config: CalendarConfig) -> None:
        import holidays  # only where days are judged (not to print a status)

        self._base = holidays.country_holidays(config.holidays, categories=("public", "government"))
        self._added: dict[dt.date, set[str] | None] = defaultdict(set)
        self._removed: dict[dt.date, set[str] | None] = defaultdict(set)
        for table, changes in ((self._added, config.add), (self._removed, config.remove)):
            for change in changes:
                scopes = table[change.date]
                if not change.scope or scopes is None:
                    table[change.date] = None  # everywhere
                else:
                    scopes.update(change.scope)

    @staticmethod
    def _applies(table: dict[dt.date, set[str] | None], day: dt.date, scope: str) -> bool:
        if day not in table:
            return False
        scopes = table[day]
        return scopes is None or scope in scopes

    def is_holiday(self, day: dt.date, scope: str) -> bool:
        """A holiday on the calendar of ``scope`` (weekends are not holidays here)."""
        if self._applies(self._added, day, scope):
            return True
        return day in self._base and not self._applies(self._removed, day, scope)

    def is_business_day(self, day: dt.date, scope: str) -> bool:
        """A weekday that is no holiday for ``scope``."""
        return day.weekday() < 5 and not self.is_holiday(day, scope)

    def next_business_day(self, day: dt.date, scope: str) -> dt.date:
        """``day`` itself when it is a business day, else the next one."""
        while not self.is_business_day(day, scope):
            day += _ONE_DAY
        return day

    def previous_business_day(self, day: dt.date, scope: str) -> dt.date:
        """``day`` itself when it is a business day, else the one before it."""
        while not self.is_business_day(day, scope):
            day -= _ONE_DAY
        return day

    def late_business_days(self, due: dt.date, arrived: dt.date, scope: str) -> int:
        """The business days d with due < d <= arrived, on the calendar of ``scope``."""
        count, day = 0, due + _ONE_DAY
        while day <= arrived:
            if self.is_business_day(day, scope):
                count += 1
            day += _ONE_DAY
        return count

    def holidays_between(self, first: dt.date, last: dt.date, scope: str) -> list[dt.date]:
        """Holidays of ``scope`` within [first, last], for display."""
        days, day = [], first
        while day <= last:
            if self.is_holiday(day, scope):
                days.append(day)
            day += _ONE_DAY
        return days


@lru_cache(maxsize=16)
def business_calendar(config: CalendarConfig) -> BusinessCalendar:
    """A shared calendar per configuration (building one loads the holiday tables)."""
    return BusinessCalendar(config)
