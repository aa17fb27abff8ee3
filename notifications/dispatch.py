"""Sending what the outbox holds: claim due rows, render, send, record the outcome.

Rows are claimed with a short lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the writer lock
on SQLite) so that several dispatchers never send the same row at once. A row the server did
not take stays ``pending`` and is retried with backoff (1 minute doubling to 1 hour, on the
same clock as the tick); after ``max_attempts`` or a permanent (5xx) refusal it is ``failed``
and one ``alert`` goes to the OPDC address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import json
import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from sqlalchemy import Connection, bindparam, select, text, update

from notifications.ics import deadline_ics
from notifications.mailers import Mailer, SendResult, SendStatus
from notifications.message import OutgoingMail
from notifications.outbox import OUTBOX, Notification, enqueue
from notifications.render import MailContext, Recipient, formal_name_th, render_mail, subject_for
from workflow.errors import BadInput, NotAllowed
from workflow.repository import ORGANISATIONS, StoredCycle, get_cycle
from workflow.store import Database
from workflow.timeutil import BANGKOK, to_bangkok

# A batch is one SMTP session per connection: 1,000 rows keep set-up and the claim/record
# transactions under a few per cent of the time at ~2,000 mails/s (bench/mail.py: 200 cost
# ~8 %). The lease must outlast sending a batch: 600 s covers a relay as slow as 2 mails/s.
LEASE_SECONDS = 600
BATCH = 1000
ICS_NOTICES = ("reminder", "overdue")


@dataclass
class DispatchReport:
    """What one dispatch run did."""

    sent: int = 0
    retrying: int = 0
    failed: list[str] = field(default_factory=list)


def backoff(attempts: int) -> int:
    """Seconds before retry number ``attempts``: 1 minute doubling, at most 1 hour."""
    return int(min(60 * 2 ** max(attempts - 1, 0), 3600))


def dispatch(
    db: Database, mailer: Mailer, now: int, *, sender: str | None = None, batch: int = BATCH
) -> DispatchReport:
    """Send every pending row due at ``now`` (virtual or real), ``batch`` rows per claim."""
    report = DispatchReport()
    cycles: dict[str, StoredCycle] = {}
    # host:pid:mailer, so that a restarted service can release leases of a dead local process.
    worker = f"{socket.gethostname()}:{os.getpid()}:{id(mailer)}"
    while True:
        with db.write() as conn:
            rows = _claim(conn, db, now, worker, batch)
        if not rows:
            return report
        with db.read() as conn:  # the lease is ours: read and render outside the writer lock
            for cycle_id in {row["cycle_id"] for row in rows} - set(cycles):
                cycles[cycle_id] = get_cycle(conn, cycle_id)
            orgs = _organisations(conn, rows)
        build = functools.partial(_letter, cycles, now, sender, orgs)
        mails = _Letters(rows, build)
        results = asyncio.run(mailer.send_batch(mails))
        with db.write() as conn:
            sent = []
            for row, result in zip(rows, results, strict=True):
                if result.status is SendStatus.SENT:
                    sent.append({"k": row["key"], "n": int(row["attempts"]) + 1})
                else:
                    _record(conn, cycles[row["cycle_id"]], row, result, now, report)
            if sent:
                conn.execute(_SENT.values(sent_at=now), sent)
                report.sent += len(sent)
        # Loop until nothing is due: alerts enqueued above are due now and go out in this run.
        # Every row handled is sent, failed or pushed to now + backoff, so this ends.


def _claim(
    conn: Connection, db: Database, now: int, worker: str, batch: int = BATCH
) -> list[dict[str, Any]]:
    wall = int(time.time())
    lock = "" if db.is_sqlite else "FOR UPDATE SKIP LOCKED"
    keys = [
        row.key
        for row in conn.execute(
            text(
                "SELECT key FROM outbox WHERE status = 'pending' AND next_attempt_at <= :now "
                "AND (lease_until IS NULL OR lease_until < :wall) "
                f"ORDER BY next_attempt_at, key LIMIT :limit {lock}"
            ),
            {"now": now, "wall": wall, "limit": batch},
        )
    ]
    if not keys:
        return []
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.key.in_(keys))
        .values(lease_until=wall + LEASE_SECONDS, leased_by=worker)
    )
    return [
        dict(row._mapping)
        for row in conn.execute(select(OUTBOX).where(OUTBOX.c.key.in_(keys)).order_by(OUTBOX.c.key))
    ]


_SENT = (
    update(OUTBOX)
    .where(OUTBOX.c.key == bindparam("k"))
    .values(status="sent", attempts=bindparam("n"), lease_until=None, last_error=None)
)


def _organisations(conn: Connection, rows: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """The organisation rows the claimed notifications are addressed to, in one query."""
    wanted = {(row["cycle_id"], row["agreement"]) for row in rows if row["agreement"]}
    found: dict[tuple[str, str], Any] = {}
    for cycle_id in {cycle for cycle, _ in wanted}:
        ids = sorted(org for cycle, org in wanted if cycle == cycle_id)
        query = select(ORGANISATIONS).where(
            ORGANISATIONS.c.cycle_id == cycle_id, ORGANISATIONS.c.id.in_(ids)
        )
        found.update({(cycle_id, org.id): org for org in conn.execute(query)})
    return found


class _Letters(Sequence[OutgoingMail]):
    """The claimed rows as letters, each rendered (once) when the mailer first asks for it.

    ``SmtpMailer``'s connections take letters one at a time, so a letter is rendered while the
    server is still busy with the ones before it on the other connections, instead of all of
    them being rendered before the first is sent (``bench/mail.py``).
    """

    def __init__(
        self, rows: list[dict[str, Any]], build: Callable[[dict[str, Any]], OutgoingMail]
    ) -> None:
        self.rows = rows
        self.build = build
        self.letters: dict[int, OutgoingMail] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> OutgoingMail: ...

    @overload
    def __getitem__(self, index: slice) -> list[OutgoingMail]: ...

    def __getitem__(self, index: int | slice) -> OutgoingMail | list[OutgoingMail]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self.rows))[index]]
        position = range(len(self.rows))[index]  # IndexError as a list would raise it
        if position not in self.letters:
            self.letters[position] = self.build(self.rows[position])
        return self.letters[position]


def _letter(
    cycles: dict[str, StoredCycle],
    now: int,
    sender: str | None,
    orgs: dict[tuple[str, str], Any],
    row: dict[str, Any],
) -> OutgoingMail:
    return _outgoing(None, cycles[row["cycle_id"]], row, now, sender, orgs=orgs)


def _outgoing(
    conn: Connection | None,
    cycle: StoredCycle,
    row: dict[str, Any],
    now: int,
    sender: str | None,
    *,
    orgs: dict[tuple[str, str], Any] | None = None,
) -> OutgoingMail:
    settings = cycle.settings
    context = json.loads(row["context"])
    milestone = settings.milestone(row["milestone"]) if row["milestone"] else None
    org = None
    if orgs is not None:
        org = orgs.get((row["cycle_id"], row["agreement"]))
    elif row["agreement"] is not None:
        assert conn is not None
        org = conn.execute(
            select(ORGANISATIONS).where(
                ORGANISATIONS.c.cycle_id == row["cycle_id"], ORGANISATIONS.c.id == row["agreement"]
            )
        ).first()
    recipient_kind = row["recipient_kind"]
    if recipient_kind in ("opdc",):
        recipient = Recipient("opdc", "สำนักงาน ก.พ.ร.", "OPDC")
    elif org is None:
        recipient = Recipient("supervisor", "สำนักงาน ก.พ.ร.", "OPDC")
    else:
        recipient = Recipient(recipient_kind, org.name_th, org.name_en)
    offset = _offset(row["key"])
    event_at = context.get("event_at")
    mail_context = MailContext(
        kind=row["kind"],
        cycle_id=cycle.id,
        cycle_name_th=settings.name_th,
        recipient=recipient,
        organisation_id=org.id if org is not None else None,
        organisation_name_th=formal_name_th(org.kind, org.name_th) if org is not None else None,
        milestone_id=milestone.id if milestone else None,
        milestone_title_th=milestone.title_th if milestone else None,
        milestone_title_en=milestone.title_en if milestone else None,
        due=milestone.due if milestone else None,
        offset_days=offset if row["kind"] != "receipt" else None,
        event_at=to_bangkok(event_at) if event_at is not None else None,
        late_business_days=context.get("late_business_days"),
        pending=tuple((str(a), str(b)) for a, b in context.get("pending", [])),
        digest_of=context.get("digest_of"),
        alert_key=context.get("alert_key"),
        alert_reason=context.get("alert_reason"),
    )
    rendered = dataclasses.replace(render_mail(mail_context), subject=row["subject"])
    ics = None
    if (
        milestone is not None
        and milestone.due is not None
        and row["notice"] in ICS_NOTICES
        and row["kind"] != "escalation"
    ):
        ics = _ics(
            f"{row['key'].replace('/', '.')}@rubrong",
            f"{milestone.title_th} / {milestone.title_en or milestone.id}",
            row["subject"],
            milestone.due,
            now,
        )
    return OutgoingMail(
        key=row["key"],
        sender=sender or settings.opdc_email,
        to=row["recipient"],
        message_id=row["message_id"],
        date=dt.datetime.fromtimestamp(now, tz=BANGKOK),
        rendered=rendered,
        ics=ics,
    )


_UID_MARK = "rubrong-uid-placeholder"
_PLAIN_UID = re.compile(r"[A-Za-z0-9._@-]{1,70}")  # "UID:" + 70 < 75: never folded


@functools.lru_cache(maxsize=256)
def _ics_template(summary: str, description: str, due: dt.date, now: int) -> bytes:
    return deadline_ics(
        uid=_UID_MARK,
        summary=summary,
        description=description,
        due=due,
        stamp=dt.datetime.fromtimestamp(now, tz=BANGKOK),
    )


def _ics(uid: str, summary: str, description: str, due: dt.date, now: int) -> bytes:
    """``deadline_ics(...)`` byte for byte; built once per deadline, text and clock reading.

    A batch of reminders differs only in the UID, and icalendar took more time per letter than
    everything else together (``bench/mail.py``). A UID that needs no escaping or folding is
    put into the cached file; any other gets a file of its own.
    """
    if _PLAIN_UID.fullmatch(uid):
        template = _ics_template(summary, description, due, now)
        return template.replace(f"UID:{_UID_MARK}\r\n".encode(), f"UID:{uid}\r\n".encode())
    stamp = dt.datetime.fromtimestamp(now, tz=BANGKOK)
    return deadline_ics(uid=uid, summary=summary, description=description, due=due, stamp=stamp)


def _offset(key: str) -> int | None:
    tail = key.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _record(
    conn: Connection,
    cycle: StoredCycle,
    row: dict[str, Any],
    result: SendResult,
    now: int,
    report: DispatchReport,
) -> None:
    attempts = int(row["attempts"]) + 1
    where = update(OUTBOX).where(OUTBOX.c.key == row["key"])
    if result.status is SendStatus.SENT:
        conn.execute(
            where.values(
                status="sent", attempts=attempts, sent_at=now, lease_until=None, last_error=None
            )
        )
        report.sent += 1
        return
    permanent = result.status is SendStatus.PERMANENT
    if permanent or attempts >= cycle.settings.notifications.max_attempts:
        conn.execute(
            where.values(
                status="failed", attempts=attempts, last_error=result.error, lease_until=None
            )
        )
        report.failed.append(row["key"])
        if row["kind"] != "alert":
            _alert(conn, cycle, row, result.error or "unknown error", now)
        return
    conn.execute(
        where.values(
            attempts=attempts,
            last_error=result.error,
            next_attempt_at=now + backoff(attempts),
            lease_until=None,
        )
    )
    report.retrying += 1


def _alert(
    conn: Connection, cycle: StoredCycle, row: dict[str, Any], reason: str, now: int
) -> None:
    """One alert to the OPDC address when a notification becomes ``failed``."""
    enqueue(
        conn,
        Notification(
            key=f"{row['key']}/alert",
            cycle=cycle.id,
            agreement=None,
            milestone=row["milestone"],
            kind="alert",
            notice=None,
            recipient=cycle.settings.opdc_email,
            recipient_kind="opdc",
            subject=subject_for(
                "alert",
                cycle_id=cycle.id,
                milestone_id=None,
                milestone_title_th=None,
                milestone_title_en=None,
                due=None,
                offset_days=None,
            ),
            send_at=now,
            status="pending",
            context={"alert_key": row["key"], "alert_reason": reason},
        ),
        now,
    )


def resend(db: Database, key: str) -> None:
    """Queue a skipped, failed or sent row again (same Message-ID); exit 2 for an unknown key."""
    with db.write() as conn:
        row = conn.execute(select(OUTBOX.c.status).where(OUTBOX.c.key == key)).first()
        if row is None:
            raise BadInput(f"unknown outbox key {key!r}")
        if row.status == "pending":
            raise NotAllowed(f"{key} is already pending")
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.key == key)
            .values(
                status="pending", attempts=0, next_attempt_at=0, lease_until=None, last_error=None
            )
        )
