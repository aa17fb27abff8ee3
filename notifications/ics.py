"""The ``.ics`` attachment: one all-day event per deadline, updated by every later letter.

One UID per (cycle, agreement, milestone), without the due date, so the three reminders, the
overdue notice and a moved deadline all update the *same* event in the recipient's calendar;
each letter carries a higher ``SEQUENCE`` (:func:`sequence_at`: minutes of its send time), and
the receipt for the deliverable cancels the event (``METHOD:CANCEL``, ``STATUS:CANCELLED``,
same UID, a higher SEQUENCE still).
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from icalendar import Alarm, Calendar, Event, vCalAddress

PRODID = "-//OPDC//rubrong//TH"
METHODS = ("PUBLISH", "CANCEL")


def sequence_at(sent_at: int, *, cancel: bool = False) -> int:
    """The SEQUENCE of a letter sent at ``sent_at`` (epoch seconds): whole minutes since the
    epoch, doubled, plus one for a cancellation.

    Later letters of one deadline always carry a higher number (also across a moved due date),
    and a cancellation beats a notice sent in the same minute. Fits the 32-bit INTEGER of
    RFC 5545 until the year 4012.
    """
    return 2 * (max(sent_at, 0) // 60) + (1 if cancel else 0)


def deadline_ics(
    *,
    uid: str,
    summary: str,
    description: str,
    due: dt.date,
    stamp: dt.datetime,
    sequence: int = 0,
    method: str = "PUBLISH",
    organizer: str | None = None,
) -> bytes:
    """An iCalendar file (UTF-8) with one all-day event on ``due``.

    ``PUBLISH`` adds (or updates) the event with an alarm a day before; ``CANCEL`` removes it.
    ``stamp`` (the DTSTAMP, aware) should be the clock's time of sending; ``uid`` one per
    deadline (see :func:`notifications.keys.thread_id`); ``organizer`` an e-mail address.
    """
    if stamp.tzinfo is None:
        raise ValueError("stamp must be an aware datetime")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", stamp.astimezone(dt.UTC))
    if organizer is not None:
        event.add("organizer", vCalAddress(f"mailto:{organizer}"))
    event.add("summary", summary)
    event.add("description", description)
    event.add("dtstart", due)
    event.add("dtend", due + dt.timedelta(days=1))
    event.add("transp", "TRANSPARENT")
    if method == "CANCEL":
        event.add("status", "CANCELLED")
    else:
        event.add("status", "CONFIRMED")
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", summary)
        alarm.add("trigger", dt.timedelta(days=-1))
        event.add_component(alarm)
    calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data


_UID_MARK = "rubrong-uid-placeholder"
_PLAIN_UID = re.compile(r"[A-Za-z0-9._@-]{1,70}")  # "UID:" + 70 < 75: never folded


@functools.lru_cache(maxsize=256)
def _template(
    summary: str,
    description: str,
    due: dt.date,
    stamp: dt.datetime,
    sequence: int,
    method: str,
    organizer: str | None,
) -> bytes:
    return deadline_ics(
        uid=_UID_MARK,
        summary=summary,
        description=description,
        due=due,
        stamp=stamp,
        sequence=sequence,
        method=method,
        organizer=organizer,
    )


def cached_deadline_ics(
    *,
    uid: str,
    summary: str,
    description: str,
    due: dt.date,
    stamp: dt.datetime,
    sequence: int = 0,
    method: str = "PUBLISH",
    organizer: str | None = None,
) -> bytes:
    """:func:`deadline_ics` byte for byte, built once per deadline, wording and clock reading.

    A batch of letters differs only in the UID, and icalendar took more time per letter than
    everything else together (``bench/mail.py``): a UID that needs no escaping or folding is put
    into a cached file; any other gets a file of its own.
    """
    if not _PLAIN_UID.fullmatch(uid):
        return deadline_ics(
            uid=uid,
            summary=summary,
            description=description,
            due=due,
            stamp=stamp,
            sequence=sequence,
            method=method,
            organizer=organizer,
        )
    template = _template(summary, description, due, stamp, sequence, method, organizer)
    return template.replace(f"UID:{_UID_MARK}\r\n".encode(), f"UID:{uid}\r\n".encode())
