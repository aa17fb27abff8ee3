"""A deadline sweep and a reminder sweep over N agreements, against raw ``sqlite3`` doing the
same writes on an identical copy of the database, in the same run.

A generated cycle (``bench.cyclegen``, N agencies, no groups) is loaded into a fresh SQLite
file. Then ``tick`` (in process, the CLI's core) processes, one at a time:

1. the first reminder instant (propose_kpis, 14 days before): N reminders INSERTed;
2. the 7- and 1-day reminders (not timed: they set the stage);
3. the deadline: N statuses ``pending`` → ``missed``, N hash-chained ``missed`` timer entries,
   and the 3 × N still pending reminders ``skipped``.

Right before the timed ticks the database is copied (SQLite backup API) and raw ``sqlite3``
does the same writes on the copy: for the reminder one set-based ``INSERT … SELECT`` into the
outbox; for the deadline a SELECT of the pending agreements, the status UPDATE, the reminder
UPDATE, the chain tip, each entry's hash computed in Python exactly as CONTRACT.md defines it
(``json.dumps`` of the printed entry), one ``executemany`` INSERT; each in one transaction,
with the same "instant done" row our tick writes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import tempfile
from pathlib import Path

from bench import Figure, Report, Stopwatch
from bench.cyclegen import generate_cycle
from notifications.keys import MESSAGE_ID_DOMAIN, outbox_key
from notifications.render import TEMPLATE_VERSION
from workflow.config.validate import parse_cycle
from workflow.rules.clock import VirtualClock
from workflow.store.database import Database
from workflow.store.history import verify
from workflow.store.repository import get_cycle
from workflow.usecases.load import load_cycle
from workflow.usecases.tick import Instant, instants, tick

NAME = "sweep"
SUMMARY = "tick: one deadline and one reminder instant over N agreements vs raw sqlite3"
DEFAULT_N = 100_000
CYCLE_ID = "2560"
BANGKOK = dt.timezone(dt.timedelta(hours=7))


def _copy(source: Path, target: Path) -> sqlite3.Connection:
    """A raw connection to a copy of ``source`` (WAL, synchronous=NORMAL, like the store)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _done(conn: sqlite3.Connection, instant: Instant) -> None:
    conn.execute(
        "INSERT INTO timers_done (cycle_id, key, at, processed_at) VALUES (?, ?, ?, ?)",
        (CYCLE_ID, instant.key, instant.at, instant.at),
    )


def _raw_reminder(conn: sqlite3.Connection, instant: Instant, subject: str) -> int:
    milestone = instant.milestone
    assert milestone.due is not None
    head, tail = outbox_key(
        CYCLE_ID, "@", milestone.id, milestone.due.isoformat(), "reminder", instant.offset
    ).split("@")
    conn.execute("BEGIN IMMEDIATE")
    _done(conn, instant)
    inserted = conn.execute(
        """
        INSERT INTO outbox (key, cycle_id, agreement, milestone, kind, notice, recipient,
            recipient_kind, subject, send_at, status, attempts, next_attempt_at, message_id,
            template, template_version, context, created_at)
        SELECT ?1 || o.id || ?2, s.cycle_id, o.id, s.milestone_id, 'reminder', 'reminder',
            o.email, o.kind, ?3, ?4, 'pending', 0, ?4,
            '<' || REPLACE(?1 || o.id || ?2, '/', '.') || ?5, 'mail/reminder', ?6, '{}', ?4
        FROM milestone_status s
        JOIN agreements a ON a.pk = s.agreement_pk
        JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id
        WHERE s.cycle_id = ?7 AND s.milestone_id = ?8 AND o.active = 1
            AND s.status IN ('pending', 'missed')
        """,
        (
            head,
            tail,
            subject,
            instant.at,
            f"@{MESSAGE_ID_DOMAIN}>",
            TEMPLATE_VERSION,
            CYCLE_ID,
            milestone.id,
        ),
    ).rowcount
    conn.execute("COMMIT")
    return inserted


def _instant(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, BANGKOK).isoformat()


def _raw_deadline(conn: sqlite3.Connection, instant: Instant) -> int:
    milestone = instant.milestone
    assert milestone.due is not None
    data = {"milestone": milestone.id, "due": milestone.due.isoformat()}
    data_text = json.dumps(data, sort_keys=True, ensure_ascii=False)
    at = _instant(instant.at)
    conn.execute("BEGIN IMMEDIATE")
    _done(conn, instant)
    rows = conn.execute(
        "SELECT a.org_id, a.state FROM milestone_status s JOIN agreements a "
        "ON a.pk = s.agreement_pk WHERE s.cycle_id = ? AND s.milestone_id = ? "
        "AND s.status = 'pending' ORDER BY a.org_id",
        (CYCLE_ID, milestone.id),
    ).fetchall()
    conn.execute(
        "UPDATE milestone_status SET status = 'missed' WHERE cycle_id = ? AND milestone_id = ? "
        "AND status = 'pending'",
        (CYCLE_ID, milestone.id),
    )
    conn.execute(
        "UPDATE outbox SET status = 'skipped' WHERE cycle_id = ? AND milestone = ? "
        "AND status = 'pending' AND notice IN ('reminder')",
        (CYCLE_ID, milestone.id),
    )
    tip = conn.execute("SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (0, "0" * 64) if tip is None else tip
    entries = []
    for org, state in rows:
        seq += 1
        entry = {
            "seq": seq, "cycle": CYCLE_ID, "agreement": org, "kind": "timer", "event": "missed",
            "from": state, "to": state, "actor": "system", "at": at, "recorded_at": at,
            "data": data, "prev_hash": prev,
        }  # fmt: skip
        payload = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest()
        entries.append((seq, CYCLE_ID, org, state, state, instant.at, data_text, prev, digest))
        prev = digest
    conn.executemany(
        "INSERT INTO history (seq, cycle_id, agreement, kind, event, from_state, to_state, actor, "
        "at, recorded_at, data, prev_hash, hash) "
        "VALUES (?, ?, ?, 'timer', 'missed', ?, ?, 'system', ?, ?6, ?, ?, ?)",
        entries,
    )
    conn.execute("COMMIT")
    return len(entries)


def _subject(db: Database) -> str:
    """The subject our tick gave the reminders (the raw side writes the same text)."""
    with db.read() as conn:
        row = conn.exec_driver_sql("SELECT subject FROM outbox LIMIT 1").first()
    assert row is not None
    return str(row[0])


def run(n: int) -> Report:
    """Sweep ``n`` agreements through one reminder and one deadline instant, ours and raw."""
    report = Report(NAME, f"tick over {n:,} agreements (agencies), SQLite file, WAL")
    with tempfile.TemporaryDirectory(prefix="rubrong-bench-") as scratch:
        folder = Path(scratch)
        set_up = Stopwatch()
        with set_up.running():
            cycle = parse_cycle(generate_cycle(cycle_id=CYCLE_ID, groups=0, agencies=n))
            path = folder / "ours.db"
            db = Database(f"sqlite:///{path}")
            db.create_schema()
            first, week, day, deadline = instants(cycle)[:4]
            assert (first.what, deadline.what) == ("reminder", "deadline")
            clock = VirtualClock(first.at)
            load_cycle(db, clock, cycle, "bench")
            with db.read() as conn:  # parse the stored settings once, as a running service has
                get_cycle(conn, CYCLE_ID)
        raw = _copy(path, folder / "raw-reminder.db")
        ours_reminder, raw_reminder = Stopwatch(), Stopwatch()
        clock.set(first.at)
        with ours_reminder.running():
            assert tick(db, clock, first.at).enqueued == n
        with raw_reminder.running():
            assert _raw_reminder(raw, first, _subject(db)) == n
        raw.close()
        for instant in (week, day):
            clock.set(instant.at)
            tick(db, clock, instant.at)
        raw = _copy(path, folder / "raw-deadline.db")
        ours_deadline, raw_deadline = Stopwatch(), Stopwatch()
        clock.set(deadline.at)
        with ours_deadline.running():
            assert tick(db, clock, deadline.at).missed == n
        with raw_deadline.running():
            assert _raw_deadline(raw, deadline) == n
        raw.close()
        with db.read() as conn:
            verification = verify(conn)
        db.dispose()
        assert verification.ok and verification.entries == n, verification
    report.figures += [
        Figure("deadline sweep ours", ours_deadline.seconds * 1000, "ms"),
        Figure("deadline sweep raw sqlite3", raw_deadline.seconds * 1000, "ms"),
        Figure("reminder sweep ours", ours_reminder.seconds * 1000, "ms"),
        Figure("reminder sweep raw sqlite3", raw_reminder.seconds * 1000, "ms"),
    ]
    report.ratios += [
        Figure("ratio ours/raw (deadline: time)", ours_deadline.seconds / raw_deadline.seconds),
        Figure("ratio ours/raw (reminder: time)", ours_reminder.seconds / raw_reminder.seconds),
    ]
    report.notes.append(
        f"set-up (generate, parse, load {n:,} agreements): {set_up.seconds:.1f} s; "
        f"our chain of {verification.entries:,} entries verified; the stored cycle settings "
        "were parsed before timing (a service keeps them; a one-off `rubrong tick` parses "
        "them first)"
    )
    return report
