"""Sending what the outbox holds: claim due rows, render, send, record the outcome.

Rows are claimed with a short lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the writer lock
on SQLite) so that several dispatchers never send the same row at once; the lease is renewed
while the batch is sent and freed at once when its holder died (``workflow.store.leases``). A
row the server did not take stays ``pending`` and is retried with backoff (1 minute doubling to
1 hour, on the same clock as the tick); after ``max_attempts`` or a permanent (5xx) refusal it
is ``failed`` and one ``alert`` goes to the OPDC address.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from sqlalchemy import Connection, bindparam, select, update

from notifications.mailers import Mailer, SendResult, SendStatus
from notifications.message import OutgoingMail
from notifications.subjects import subject_for
from workflow.rules.defaults import BATCH
from workflow.rules.errors import BadInput, NotAllowed
from workflow.store.database import Database
from workflow.store.leases import Heartbeat, claim, release_stale_leases, worker_id
from workflow.store.outbox import OUTBOX, Notification, enqueue
from workflow.store.repository import ORGANISATIONS, StoredCycle, get_cycle
from workflow.usecases.letters import build_letter


@dataclass
class DispatchReport:
    """What one dispatch run did."""

    sent: int = 0
    retrying: int = 0
    failed: list[str] = field(default_factory=list)
    released: int = 0  # leases freed first: expired, or of a dead process on this host


def backoff(attempts: int) -> int:
    """Seconds before retry number ``attempts``: 1 minute doubling, at most 1 hour."""
    return int(min(60 * 2 ** max(attempts - 1, 0), 3600))


def dispatch(
    db: Database,
    mailer: Mailer,
    now: int,
    *,
    sender: str | None = None,
    batch: int = BATCH,
    reclaim: bool = True,
) -> DispatchReport:
    """Send every pending row due at ``now`` (virtual or real), ``batch`` rows per claim.

    First (unless ``reclaim`` is False: the service does it itself) the leases nobody alive
    holds are freed (``workflow.store.leases``), so the rows of a dispatcher killed on this host
    go out now; while a batch is rendered and sent a heartbeat renews its lease.
    """
    report = DispatchReport()
    if reclaim:
        report.released = release_stale_leases(db, int(time.time()))
    with Heartbeat(db, worker_id()) as heartbeat:
        return _dispatch(db, mailer, now, sender, batch, heartbeat, report)


def _dispatch(
    db: Database,
    mailer: Mailer,
    now: int,
    sender: str | None,
    batch: int,
    heartbeat: Heartbeat,
    report: DispatchReport,
) -> DispatchReport:
    cycles: dict[str, StoredCycle] = {}
    while True:
        with db.write() as conn:
            rows = claim(conn, db, now, heartbeat.worker, batch)
        if not rows:
            return report
        heartbeat.hold([row["key"] for row in rows])  # renewed until recorded below
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
                    sent.append({"k": row["key"], "n": int(row["attempts"]) + 1, **_proof(result)})
                else:
                    _record(conn, cycles[row["cycle_id"]], row, result, now, report)
            if sent:
                conn.execute(_SENT.values(sent_at=now), sent)
                report.sent += len(sent)
        # Loop until nothing is due: alerts enqueued above are due now and go out in this run.
        # Every row handled is sent, failed or pushed to now + backoff, so this ends.


_SENT = (
    update(OUTBOX)
    .where(OUTBOX.c.key == bindparam("k"))
    .values(
        status="sent",
        attempts=bindparam("n"),
        lease_until=None,
        last_error=None,
        sent_bytes=bindparam("b"),
        sent_sha256=bindparam("h"),
    )
)


def _proof(result: SendResult) -> dict[str, Any]:
    """Proof of notice: the bytes the mailer handed over and their SHA-256 (lower-case hex),
    stored by the same UPDATE that marks the row ``sent``."""
    data = result.data
    return {"b": data, "h": None if data is None else hashlib.sha256(data).hexdigest()}


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
    return letter_for(None, cycles[row["cycle_id"]], row, now, sender, orgs=orgs)


def letter_for(
    conn: Connection | None,
    cycle: StoredCycle,
    row: dict[str, Any],
    now: int,
    sender: str | None,
    *,
    orgs: dict[tuple[str, str], Any] | None = None,
) -> OutgoingMail:
    """The letter for ``row`` (``workflow.usecases.letters.build_letter``), its organisation read
    from ``orgs`` or, without them, through ``conn``."""
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
    return build_letter(cycle, row, org, now, sender)


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
                status="sent",
                attempts=attempts,
                sent_at=now,
                lease_until=None,
                last_error=None,
                sent_bytes=result.data,
                sent_sha256=_proof(result)["h"],
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
