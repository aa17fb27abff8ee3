"""Read-only iCalendar feeds, one per organisation: their revocable secrets and the calendar.

A feed is opened by a URL that holds a random secret (``/ical/SECRET/ORG.ics``): calendar
programs cannot sign in. Only the secret's SHA-256 is stored (``ical_feeds.secret_hash``); a
secret opens the feed of the one organisation (and cycle) it was issued for, until revoked.

The calendar has one all-day event per deliverable with a due date and per cutoff, and one
multi-day event per window, of the milestones that concern the agreement. Each event's UID is
the deadline's thread root (:func:`notifications.keys.thread_id`), the UID of the ``.ics``
that reminders and overdue notices carry, so a moved deadline moves the same event. A deliverable
that arrived or was waived is ``STATUS:CANCELLED``, as the receipt's ``METHOD:CANCEL`` says in
the mailed calendar file. ``DTSTAMP``, ``LAST-MODIFIED`` and ``SEQUENCE``
(:func:`notifications.ics.sequence_at`) follow the agreement's last recorded change, so the same
content gives the same bytes (and the same ETag).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from icalendar import Alarm, Calendar, Event
from sqlalchemy import Connection, func, insert, or_, select, update

from notifications.dates import english_date, thai_date
from notifications.ics import PRODID, sequence_at
from notifications.keys import thread_id
from notifications.render import formal_name_th
from notifications.wording import deliverable_of, formal_name_en
from workflow.config.model import Milestone
from workflow.rules.clock import Clock
from workflow.rules.errors import BadInput, quoted
from workflow.rules.timeutil import format_instant
from workflow.store.database import Database
from workflow.store.repository import get_agreement, get_cycle, latest_cycle_id
from workflow.store.tables import (
    CycleRow,
    CycleVersionRow,
    HistoryRow,
    IcalFeedRow,
    OrganisationRow,
)
from workflow.store.views import milestone_rows

FEEDS = IcalFeedRow.__table__  # type: ignore[attr-defined]
_ORGS = OrganisationRow.__table__  # type: ignore[attr-defined]
_CYCLES = CycleRow.__table__  # type: ignore[attr-defined]
_VERSIONS = CycleVersionRow.__table__  # type: ignore[attr-defined]
_HISTORY = HistoryRow.__table__  # type: ignore[attr-defined]
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
REFRESH = dt.timedelta(hours=1)
DONE = ("met", "late", "waived")

# (Thai, English) of what the feed says beside the cycle's own titles.
STATUS_WORDS = {
    "pending": ("รอดำเนินการ", "pending"),
    "met": ("ส่งแล้ว ตรงเวลา", "done on time"),
    "late": ("ส่งแล้ว ล่าช้า", "done late"),
    "missed": ("เลยกำหนด ยังไม่ได้ส่ง", "overdue, not yet done"),
    "waived": ("ได้รับยกเว้น", "waived"),
}
MARKS = {
    "met": ("ส่งแล้ว", "Done"),
    "late": ("ส่งแล้ว", "Done"),
    "waived": ("ยกเว้น", "Waived"),
    "missed": ("เลยกำหนด", "Overdue"),
}
ACTORS = {
    "opdc": ("สำนักงาน ก.พ.ร.", "OPDC"),
    "committee": ("คณะกรรมการเจรจาข้อตกลง", "the negotiation committee"),
    "nso": ("สำนักงานสถิติแห่งชาติ", "the National Statistical Office"),
}


def hash_secret(secret: str) -> str:
    """The stored form of a feed secret: lower-case hex SHA-256 of its ASCII bytes."""
    return hashlib.sha256(secret.encode("ascii", "replace")).hexdigest()


def feed_path(secret: str, org_id: str) -> str:
    """The feed's URL path: ``/ical/SECRET/ORG.ics``."""
    return f"/ical/{secret}/{org_id}.ics"


def feed_url(path: str, base: str | None) -> str:
    """``path`` under ``base`` (``RUBRONG_PUBLIC_URL``) when one is given, else the path."""
    base = (base or "").strip().rstrip("/")
    return f"{base}{path}" if base else path


@dataclass(frozen=True)
class IssuedFeed:
    """A secret just issued: shown once, never stored."""

    secret: str
    cycle_id: str
    org_id: str

    @property
    def path(self) -> str:
        """The feed's URL path (with the secret)."""
        return feed_path(self.secret, self.org_id)


def _cycle_of(conn: Connection, cycle_id: str | None) -> str:
    ident = cycle_id or latest_cycle_id(conn)
    if ident is None:
        raise BadInput("no cycle is loaded")
    if conn.execute(select(_CYCLES.c.id).where(_CYCLES.c.id == ident)).first() is None:
        raise BadInput(f"unknown cycle {quoted(ident)}")
    return ident


def issue_feed(
    db: Database, clock: Clock, org_id: str, cycle_id: str | None = None, *, replace: bool = False
) -> IssuedFeed:
    """A new secret for the organisation's feed in the cycle (default: the latest); exit 2 when
    the organisation is not (or no longer) in that cycle. ``replace`` revokes its other
    secrets of that cycle in the same transaction."""
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    with db.write() as conn:
        cycle = _cycle_of(conn, cycle_id)
        found = conn.execute(
            select(_ORGS.c.id).where(
                _ORGS.c.cycle_id == cycle, _ORGS.c.id == org_id, _ORGS.c.active.is_(True)
            )
        ).first()
        if found is None:
            raise BadInput(f"{quoted(org_id)} is not an organisation of cycle {cycle}")
        if replace:
            conn.execute(
                update(FEEDS)
                .where(
                    FEEDS.c.cycle_id == cycle,
                    FEEDS.c.org_id == org_id,
                    FEEDS.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
        conn.execute(
            insert(FEEDS).values(
                secret_hash=hash_secret(secret),
                cycle_id=cycle,
                org_id=org_id,
                created_at=now,
                revoked_at=None,
            )
        )
    return IssuedFeed(secret, cycle, org_id)


def revoke_feeds(db: Database, clock: Clock, org_id: str, cycle_id: str | None = None) -> int:
    """Revoke every live secret of the organisation (of one cycle when given); how many.
    Exit 2 when no loaded cycle has that organisation."""
    with db.write() as conn:
        known = select(_ORGS.c.id).where(_ORGS.c.id == org_id)
        if cycle_id is not None:
            known = known.where(_ORGS.c.cycle_id == _cycle_of(conn, cycle_id))
        if conn.execute(known.limit(1)).first() is None:
            where = f"cycle {cycle_id}" if cycle_id is not None else "any loaded cycle"
            raise BadInput(f"{quoted(org_id)} is not an organisation of {where}")
        query = update(FEEDS).where(FEEDS.c.org_id == org_id, FEEDS.c.revoked_at.is_(None))
        if cycle_id is not None:
            query = query.where(FEEDS.c.cycle_id == cycle_id)
        return int(conn.execute(query.values(revoked_at=clock.now())).rowcount or 0)


def feed_rows(conn: Connection, cycle_id: str | None = None) -> list[dict[str, Any]]:
    """Every secret ever issued, oldest first: ``organisation``, ``cycle``, ``created``,
    ``revoked`` (an instant or null) and ``active``; never the secret or its hash."""
    query = select(FEEDS.c.org_id, FEEDS.c.cycle_id, FEEDS.c.created_at, FEEDS.c.revoked_at)
    if cycle_id is not None:
        query = query.where(FEEDS.c.cycle_id == cycle_id)
    query = query.order_by(FEEDS.c.created_at, FEEDS.c.org_id, FEEDS.c.cycle_id)
    return [
        {
            "organisation": row.org_id,
            "cycle": row.cycle_id,
            "created": format_instant(row.created_at),
            "revoked": format_instant(row.revoked_at),
            "active": row.revoked_at is None,
        }
        for row in conn.execute(query)
    ]


def feed_status(conn: Connection, cycle_id: str, org_id: str) -> dict[str, Any]:
    """The organisation's secrets in the cycle: ``active`` and ``revoked`` counts and when the
    newest live one was issued (``latest``, an instant or null)."""
    rows = conn.execute(
        select(FEEDS.c.created_at, FEEDS.c.revoked_at).where(
            FEEDS.c.cycle_id == cycle_id, FEEDS.c.org_id == org_id
        )
    ).all()
    live = [row.created_at for row in rows if row.revoked_at is None]
    return {
        "active": len(live),
        "revoked": len(rows) - len(live),
        "latest": format_instant(max(live)) if live else None,
    }


def open_feed(conn: Connection, secret: str, org_id: str) -> tuple[str | None, str]:
    """(the cycle whose feed ``secret`` opens for ``org_id``, or None; why not)."""
    if not _SECRET.fullmatch(secret):
        return None, "malformed secret"
    row = conn.execute(
        select(FEEDS.c.cycle_id, FEEDS.c.org_id, FEEDS.c.revoked_at).where(
            FEEDS.c.secret_hash == hash_secret(secret)
        )
    ).first()
    if row is None:
        return None, "wrong secret"
    if row.org_id != org_id:
        return None, f"a secret of another organisation ({row.org_id})"
    if row.revoked_at is not None:
        return None, "revoked secret"
    return str(row.cycle_id), "ok"


def changed_at(conn: Connection, cycle_id: str, org_id: str) -> int:
    """The last recorded change the feed shows: the agreement's history entries, the cycle's
    configuration entries and versions, and its loading."""
    history = conn.execute(
        select(func.max(_HISTORY.c.recorded_at)).where(
            _HISTORY.c.cycle_id == cycle_id,
            or_(_HISTORY.c.agreement == org_id, _HISTORY.c.agreement.is_(None)),
        )
    ).scalar_one()
    version = conn.execute(
        select(func.max(_VERSIONS.c.applied_at)).where(_VERSIONS.c.cycle_id == cycle_id)
    ).scalar_one()
    loaded = conn.execute(
        select(_CYCLES.c.loaded_at).where(_CYCLES.c.id == cycle_id)
    ).scalar_one_or_none()
    return max(int(value) for value in (history, version, loaded, 0) if value is not None)


@dataclass(frozen=True)
class Feed:
    """A rendered feed: the bytes and the instant of the last change they show."""

    body: bytes
    changed_at: int

    @property
    def etag(self) -> str:
        """A strong entity tag over the bytes (quotes included)."""
        return f'"{hashlib.sha256(self.body).hexdigest()[:32]}"'


def _day(value: Any) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(str(value)[:10])


def _both(th: str, en: str) -> str:
    return f"{th} / {en[:1].upper()}{en[1:]}"


def _summary(milestone: Milestone, status: str | None) -> str:
    """Thai / English; deliverables worded as the mail's calendar file words them."""
    if milestone.kind == "deliverable":
        wording = deliverable_of(milestone)
        text = _both(wording.what_th, wording.what_en)
    else:
        text = _both(milestone.title_th, milestone.title_en or milestone.title_th)
    mark = MARKS.get(status or "") if milestone.kind == "deliverable" else None
    return f"[{_both(*mark)}] {text}" if mark else text


def _description(
    milestone: Milestone, row: dict[str, Any], party: tuple[str, str], page: str | None
) -> str:
    """Thai first, English beneath: what, when, who acts, and (deliverables) the status."""
    due, start = _day(row["due"]), _day(row.get("start"))
    assert due is not None
    th, en = [milestone.title_th], [milestone.title_en or milestone.title_th]
    if milestone.kind == "window" and start is not None:
        th.append(f"ช่วงเวลา: {thai_date(start)} ถึง {thai_date(due)}")
        en.append(f"Period: {english_date(start)} to {english_date(due)}")
    elif milestone.kind == "cutoff":
        th.append(f"วันสุดท้าย: {thai_date(due)}")
        en.append(f"Last day: {english_date(due)}")
    else:
        th.append(f"กำหนดส่ง: ภายในวันที่ {thai_date(due)}")
        en.append(f"Due: by the end of {english_date(due)} (Bangkok time)")
    published = _day(row.get("published_due"))
    if published is not None and published != due:
        th.append(f"(กำหนดตามประกาศ {thai_date(published)} ตรงกับวันหยุด)")
        en.append(f"(published as {english_date(published)}, a day off)")
    actor = party if milestone.actor == "organisation" else ACTORS.get(milestone.actor)
    if actor is not None:
        th.append(f"ผู้ดำเนินการ: {actor[0]}")
        en.append(f"By: {actor[1]}")
    words = STATUS_WORDS.get(row["status"]) if milestone.kind == "deliverable" else None
    if words is not None:
        met = _day(row.get("met_at"))
        th.append(f"สถานะ: {words[0]}" + (f" ({thai_date(met)})" if met else ""))
        en.append(f"Status: {words[1]}" + (f" ({english_date(met)})" if met else ""))
    if page:
        th.append(page)
    return "\n".join(th) + "\n\n" + "\n".join(en)


def feed_calendar(
    conn: Connection, cycle_id: str, org_id: str, page_base: str | None = None
) -> Feed:
    """The organisation's calendar in the cycle (``page_base``: the web app's URL, for a link
    to the agreement page in every event)."""
    cycle = get_cycle(conn, cycle_id)
    found = get_agreement(conn, cycle.id, org_id)
    changed = changed_at(conn, cycle.id, org_id)
    stamp = dt.datetime.fromtimestamp(changed, tz=dt.UTC)
    sequence = sequence_at(changed)
    party = (
        formal_name_th(found.kind, found.name_th),
        formal_name_en(found.kind, found.org_id, found.name_en, found.name_th),
    )
    page = feed_url(f"/agreements/{org_id}", page_base) if page_base else None
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    name = f"คำรับรองฯ {cycle.id} {party[0]} / {party[1]}"
    calendar.add("x-wr-calname", name)
    calendar.add("name", name)
    calendar.add(
        "x-wr-caldesc",
        f"กำหนดการตามคำรับรองการปฏิบัติราชการ {cycle.settings.name_th} / "
        f"Deadlines of the performance agreement, cycle {cycle.id}",
    )
    calendar.add("x-wr-timezone", "Asia/Bangkok")
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    settings = {m.id: m for m in cycle.settings.milestones}
    for row in milestone_rows(conn, cycle.id, [org_id]):
        milestone, due = settings.get(row["milestone"]), _day(row["due"])
        if milestone is None or due is None:
            continue
        first = _day(row.get("start")) if milestone.kind == "window" else None
        event = Event()
        event.add("uid", thread_id(cycle.id, org_id, milestone.id).strip("<>"))
        event.add("sequence", sequence)
        event.add("dtstamp", stamp)
        event.add("last-modified", stamp)
        event.add("summary", _summary(milestone, row["status"]))
        event.add("description", _description(milestone, row, party, page))
        event.add("dtstart", first or due)
        event.add("dtend", due + dt.timedelta(days=1))
        event.add("transp", "TRANSPARENT")
        if page:
            event.add("url", page)
        done = milestone.kind == "deliverable" and row["status"] in DONE
        event.add("status", "CANCELLED" if done else "CONFIRMED")
        if milestone.kind == "deliverable" and milestone.actor == "organisation" and not done:
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", _summary(milestone, None))
            alarm.add("trigger", dt.timedelta(days=-1))
            event.add_component(alarm)
        calendar.add_component(event)
    body: bytes = calendar.to_ical()
    return Feed(body, changed)
