"""Times as the contract defines them: ISO 8601, Asia/Bangkok by default, printed with +07:00.

Inside the database every instant is an integer count of seconds since the Unix epoch, so
comparisons are plain integer comparisons on every backend; dates are ``YYYY-MM-DD`` text.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from workflow.rules.errors import quoted

BANGKOK = ZoneInfo("Asia/Bangkok")
DAY_SECONDS = 86_400


class TimeFormatError(ValueError):
    """A time or date string that is not ISO 8601."""


def parse_instant(text: str) -> int:
    """Parse an ISO 8601 time or date; no offset means Asia/Bangkok, a bare date its 00:00.

    The one parser for times a user gives (CLI ``--at``/``--as-of``/``--now``, the API's
    ``at``/``as_of``, scenario lines): empty or blank text is refused like any malformed time.
    """
    value = text.strip()
    if not value:
        raise TimeFormatError("empty; expected an ISO 8601 time such as 2011-04-30T10:00")
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            moment = dt.datetime(day.year, day.month, day.day, tzinfo=BANGKOK)
        else:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=BANGKOK)
        return int(moment.timestamp())
    except (ValueError, OverflowError) as exc:
        raise TimeFormatError(f"not an ISO 8601 time: {quoted(text)}") from exc


def parse_date(text: str) -> dt.date:
    """Parse a bare ``YYYY-MM-DD`` date."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise TimeFormatError(f"not a date (YYYY-MM-DD): {quoted(text)}") from exc


def to_bangkok(instant: int) -> dt.datetime:
    """The Bangkok wall-clock time of an instant."""
    return dt.datetime.fromtimestamp(instant, tz=BANGKOK)


def format_instant(instant: int | None) -> str | None:
    """Print an instant as ISO 8601 with ``+07:00`` (seconds precision)."""
    if instant is None:
        return None
    return to_bangkok(instant).isoformat(timespec="seconds")


def day_start(day: dt.date) -> int:
    """00:00 Asia/Bangkok of ``day``."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=BANGKOK).timestamp())


def deadline_instant(due: dt.date) -> int:
    """The end of a due day: 00:00 Asia/Bangkok of the next day."""
    return day_start(due + dt.timedelta(days=1))


def at_time_of_day(day: dt.date, hhmm: str) -> int:
    """``day`` at ``HH:MM`` Asia/Bangkok."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    return int(dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=BANGKOK).timestamp())


def bangkok_date(instant: int) -> dt.date:
    """The Bangkok calendar date an instant falls on."""
    return to_bangkok(instant).date()
