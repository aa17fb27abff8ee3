"""The ``.ics`` attachment carried by reminders and overdue notices: one all-day deadline."""

from __future__ import annotations

import datetime as dt

from icalendar import Alarm, Calendar, Event

PRODID = "-//OPDC//rubrong//TH"


def deadline_ics(
    *, uid: str, summary: str, description: str, due: dt.date, stamp: dt.datetime
) -> bytes:
    """An iCalendar file (UTF-8) with one all-day event on ``due`` and an alarm a day before.

    ``stamp`` (the DTSTAMP, aware) should be the clock's time of rendering; ``uid`` should be
    stable per deadline so a calendar updates the same event instead of adding another.
    """
    if stamp.tzinfo is None:
        raise ValueError("stamp must be an aware datetime")
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(dt.UTC))
    event.add("summary", summary)
    event.add("description", description)
    event.add("dtstart", due)
    event.add("dtend", due + dt.timedelta(days=1))
    event.add("transp", "TRANSPARENT")
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", summary)
    alarm.add("trigger", dt.timedelta(days=-1))
    event.add_component(alarm)
    calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data
