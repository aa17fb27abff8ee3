"""Shared by the store contract tests (``tests/test_store_contract_*.py``): the cycle, the
thread harness for concurrent writers and the outbox helpers.

The ``db`` and ``loaded_db`` fixtures are in ``tests/conftest.py``.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select, update

from notifications.keys import outbox_key
from tests.conftest import CYCLE_2554
from workflow.config.validate import read_cycle_file
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.leases import claim
from workflow.store.outbox import OUTBOX, Notification, enqueue

CYCLE = read_cycle_file(CYCLE_2554)
CYCLE_ID = CYCLE.id
SEND_AT = parse_instant("2011-04-16T09:00")  # the sar6 14-day reminders
GENEROUS = 120.0  # seconds: how long a thread may take on a loaded machine before we give up
OTHER_HOST = "elsewhere.example:4242:1.cafe"  # a worker id of a dispatcher on another host
T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def together(
    url: str, count: int, work: Callable[[int, Database, threading.Barrier], T]
) -> list[T]:
    """Run ``work(i, db, barrier)`` in ``count`` threads, each with a ``Database`` of its own;
    the barrier lets them start each round together. Their results in order; the first error
    any thread raised is raised here."""
    barrier = threading.Barrier(count, timeout=GENEROUS)
    results: dict[int, T] = {}
    errors: list[BaseException] = []
    databases = [Database(url) for _ in range(count)]

    def run(index: int) -> None:
        try:
            results[index] = work(index, databases[index], barrier)
        except BaseException as exc:  # reported in the test's thread below
            errors.append(exc)
            barrier.abort()  # the others must not wait for this one forever

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + GENEROUS
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running after {GENEROUS} s: {stuck}"
    for database in databases:
        database.dispose()
    # A thread's own failure, rather than the broken barrier it left the others.
    errors.sort(key=lambda exc: isinstance(exc, threading.BrokenBarrierError))
    if errors:
        raise errors[0]
    return [results[i] for i in range(count)]


def notice(
    agreement: str | None,
    milestone: str,
    kind: str,
    offset: int = 0,
    *,
    cycle: str = CYCLE_ID,
    subject: str = "subject",
    send_at: int = SEND_AT,
) -> Notification:
    """A notification as the tick or a fire would enqueue it."""
    return Notification(
        key=outbox_key(cycle, agreement, milestone, "2011-04-30", kind, offset),
        cycle=cycle,
        agreement=agreement,
        milestone=milestone,
        kind=kind,
        notice=kind if kind in ("reminder", "overdue", "escalation") else None,
        recipient=f"{agreement or 'opdc'}@example.org",
        recipient_kind="province",
        subject=subject,
        send_at=send_at,
        status="pending",
        context={"n": offset},
    )


def enqueue_all(db: Database, notifications: Sequence[Notification]) -> list[str]:
    """Enqueue (one transaction); their keys."""
    with db.write() as conn:
        for item in notifications:
            assert enqueue(conn, item, SEND_AT)
    return [item.key for item in notifications]


def outbox(db: Database) -> dict[str, dict[str, Any]]:
    """Every outbox row by key."""
    with db.read() as conn:
        return {row.key: dict(row._mapping) for row in conn.execute(select(OUTBOX))}


def claim_in(db: Database, worker: str, batch: int = 100, now: int = SEND_AT) -> list[str]:
    """One dispatcher's claim transaction; the keys it got."""
    with db.write() as conn:
        return [row["key"] for row in claim(conn, db, now, worker, batch)]


def set_rows(db: Database, keys: Sequence[str], **values: Any) -> None:
    """Change outbox rows behind the store's back (time passing, a recorded outcome)."""
    with db.write() as conn:
        conn.execute(update(OUTBOX).where(OUTBOX.c.key.in_(list(keys))).values(**values))


def dead_pid() -> int:
    """The pid of a process of ours that has ended (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait(timeout=GENEROUS)
    return child.pid
