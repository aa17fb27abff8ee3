"""The raw-driver side of ``bench.national``: ``sqlite3`` or ``psycopg`` doing the same writes
as ``load_cycle``, ``tick`` (a notice instant, a deadline) and ``dispatch`` (claims, records),
with a prebuilt letter sent by plain ``aiosmtplib``: the baseline our figures are divided by.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import aiosmtplib

from notifications.keys import MESSAGE_ID_DOMAIN, outbox_key
from notifications.render import TEMPLATE_VERSION
from workflow.config.model import Cycle
from workflow.config.validate import canonical_json
from workflow.rules.defaults import BATCH
from workflow.rules.timeutil import format_instant
from workflow.store.database import CHAIN_LOCK_ID
from workflow.usecases.load import cycle_milestone_rows, cycle_party_rows
from workflow.usecases.tick import Instant

CYCLE_ID = "2560"
CONNECTIONS = 4


class Raw:
    """The driver itself: ``?`` placeholders (``%s`` for psycopg), explicit transactions."""

    def __init__(self, conn: Any, pg: bool) -> None:
        self.conn = conn
        self.pg = pg

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Execute one statement; the cursor."""
        return self.conn.execute(sql.replace("?", "%s") if self.pg else sql, params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Execute one statement per row."""
        if self.pg:
            with self.conn.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), rows)
        else:
            self.conn.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN (IMMEDIATE on SQLite) … COMMIT."""
        self.run("BEGIN" if self.pg else "BEGIN IMMEDIATE")
        yield
        self.run("COMMIT")


def raw_load(raw: Raw, cycle: Cycle, now: int) -> None:
    """What ``load_cycle`` writes for a new cycle."""
    document = canonical_json(cycle.document)
    digest = hashlib.sha256(document.encode()).hexdigest()
    milestones = cycle_milestone_rows(cycle)
    parties = cycle_party_rows(cycle)
    with raw.transaction():
        raw.run(
            "INSERT INTO cycles (id, name_th, version, content_hash, document, source, "
            "load_order, loaded_at) VALUES (?, ?, 1, ?, ?, 'bench', 1, ?)",
            (cycle.id, cycle.name_th, digest, document, now),
        )
        raw.run(
            "INSERT INTO cycle_versions (cycle_id, version, content_hash, document, source, "
            "applied_at) VALUES (?, 1, ?, ?, 'bench', ?)",
            (cycle.id, digest, document, now),
        )
        for table, rows in (("cycle_milestones", milestones), ("organisations", parties)):
            columns = list(rows[0])
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            raw.many(sql, [tuple(row[c] for c in columns) for row in rows])
        raw.run(_AGREEMENTS, (False, False, cycle.id))
        raw.run(_STATUSES, (cycle.id, True, True, True))


# The statements of ``workflow.usecases.load`` (positional parameters).
_AGREEMENTS = """
    INSERT INTO agreements (cycle_id, org_id, state, version, published, kpi_version, negotiated)
    SELECT o.cycle_id, o.id, 'drafted', 0, ?, 0, ?
    FROM organisations o
    WHERE o.cycle_id = ? AND NOT EXISTS (
        SELECT 1 FROM agreements a WHERE a.cycle_id = o.cycle_id AND a.org_id = o.id)
"""
_STATUSES = """
    INSERT INTO milestone_status (agreement_pk, milestone_id, cycle_id, status)
    SELECT a.pk, m.id, a.cycle_id,
           CASE WHEN m.kind = 'deliverable' THEN 'pending' ELSE 'open' END
    FROM agreements a
    JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id
    JOIN cycle_milestones m ON m.cycle_id = a.cycle_id
    WHERE a.cycle_id = ?
      AND ((o.kind = 'province' AND m.for_province = ?)
        OR (o.kind = 'group' AND m.for_group = ?)
        OR (o.kind = 'agency' AND m.for_agency = ?))
      AND NOT EXISTS (SELECT 1 FROM milestone_status s
                      WHERE s.agreement_pk = a.pk AND s.milestone_id = m.id)
"""


def _done(raw: Raw, instant: Instant) -> None:
    raw.run(
        "INSERT INTO timers_done (cycle_id, key, at, processed_at) VALUES (?, ?, ?, ?)",
        (CYCLE_ID, instant.key, instant.at, instant.at),
    )
    raw.run("UPDATE cycles SET last_tick = ? WHERE id = ?", (instant.at, CYCLE_ID))


def raw_notices(raw: Raw, instant: Instant, subject: str) -> int:
    """One instant's notices to every organisation still unmet."""
    milestone = instant.milestone
    assert milestone.due is not None
    head, tail = outbox_key(
        CYCLE_ID, "@", milestone.id, milestone.due.isoformat(), instant.what, instant.offset
    ).split("@")
    with raw.transaction():
        _done(raw, instant)
        cursor = raw.run(
            "INSERT INTO outbox (key, cycle_id, agreement, milestone, kind, notice, recipient, "
            "recipient_kind, subject, send_at, status, attempts, next_attempt_at, message_id, "
            "template, template_version, context, created_at) "
            "SELECT ? || o.id || ?, s.cycle_id, o.id, s.milestone_id, ?, ?, o.email, o.kind, ?, ?, "
            "'pending', 0, ?, '<' || REPLACE(? || o.id || ?, '/', '.') || ?, ?, ?, '{}', ? "
            "FROM milestone_status s JOIN agreements a ON a.pk = s.agreement_pk "
            "JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id "
            "WHERE s.cycle_id = ? AND s.milestone_id = ? AND o.active = ? "
            "AND s.status IN ('pending', 'missed')",
            (
                head,
                tail,
                instant.what,
                instant.what,
                subject,
                instant.at,
                instant.at,
                head,
                tail,
                f"@{MESSAGE_ID_DOMAIN}>",
                f"mail/{instant.what}",
                TEMPLATE_VERSION,
                instant.at,
                CYCLE_ID,
                milestone.id,
                True,
            ),
        )
        return int(cursor.rowcount)


def raw_deadline(raw: Raw, instant: Instant) -> int:
    """Pending → missed, the reminders skipped, one hash-chained entry per agreement."""
    milestone = instant.milestone
    assert milestone.due is not None
    data = {"milestone": milestone.id, "due": milestone.due.isoformat()}
    data_text = json.dumps(data, sort_keys=True, ensure_ascii=False)
    at = format_instant(instant.at)
    with raw.transaction():
        if raw.pg:
            raw.run("SELECT pg_advisory_xact_lock(?)", (CHAIN_LOCK_ID,))
        _done(raw, instant)
        rows = raw.run(
            "SELECT a.org_id, a.state FROM milestone_status s JOIN agreements a "
            "ON a.pk = s.agreement_pk WHERE s.cycle_id = ? AND s.milestone_id = ? "
            "AND s.status = 'pending' ORDER BY a.org_id",
            (CYCLE_ID, milestone.id),
        ).fetchall()
        raw.run(
            "UPDATE milestone_status SET status = 'missed' WHERE cycle_id = ? "
            "AND milestone_id = ? AND status = 'pending'",
            (CYCLE_ID, milestone.id),
        )
        raw.run(
            "UPDATE outbox SET status = 'skipped' WHERE cycle_id = ? AND milestone = ? "
            "AND status = 'pending' AND notice IN ('reminder')",
            (CYCLE_ID, milestone.id),
        )
        tip = raw.run("SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (0, "0" * 64) if tip is None else (int(tip[0]), str(tip[1]))
        entries = []
        for org, state in rows:
            seq += 1
            entry = {
                "seq": seq,
                "cycle": CYCLE_ID,
                "agreement": org,
                "kind": "timer",
                "event": "missed",
                "from": state,
                "to": state,
                "actor": "system",
                "at": at,
                "recorded_at": at,
                "data": data,
                "prev_hash": prev,
            }
            payload = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            digest = hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest()
            entries.append(
                (seq, CYCLE_ID, org, state, state, instant.at, instant.at, data_text, prev, digest)
            )
            prev = digest
        raw.many(
            "INSERT INTO history (seq, cycle_id, agreement, kind, event, from_state, "
            "to_state, actor, at, recorded_at, data, prev_hash, hash) VALUES "
            "(?, ?, ?, 'timer', 'missed', ?, ?, 'system', ?, ?, ?, ?, ?)",
            entries,
        )
    return len(rows)


def raw_dispatch(raw: Raw, port: int, now: int, letter: bytes, sample_id: str) -> int:
    """Claim in batches, send one prebuilt letter per row (its Message-ID), record as sent."""
    lock = " FOR UPDATE SKIP LOCKED" if raw.pg else ""
    sent = 0
    while True:
        with raw.transaction():
            rows = raw.run(
                "SELECT key, recipient, message_id FROM outbox WHERE status = 'pending' AND "
                "next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?) "
                f"ORDER BY next_attempt_at, key LIMIT ?{lock}",
                (now, int(time.time()), BATCH),
            ).fetchall()
            if not rows:
                return sent
            keys = [(row[0],) for row in rows]
            raw.many("UPDATE outbox SET lease_until = 0, leased_by = 'raw' WHERE key = ?", keys)
        mails = [(row[1], letter.replace(sample_id.encode(), row[2].encode())) for row in rows]
        asyncio.run(_send(port, mails))
        with raw.transaction():
            raw.many(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = "
                f"{now}, lease_until = NULL WHERE key = ?",
                keys,
            )
        sent += len(rows)


async def _send(port: int, mails: list[tuple[str, bytes]]) -> None:
    queue = list(reversed(mails))

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        while queue:
            to, data = queue.pop()
            await client.sendmail("opdc@opdc.rubrong.example", [to], data)
        await client.quit()

    await asyncio.gather(*(worker() for _ in range(min(CONNECTIONS, len(mails)))))
