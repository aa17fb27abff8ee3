"""The store contract (issue 10 item 3), the outbox part: the same tests on SQLite and
PostgreSQL (``db_url``; the ``db`` and ``loaded_db`` fixtures are in ``tests/conftest.py``).

The store-level functions are called directly, not through the CLI. Concurrent writers are
threads, each with a ``Database`` (an engine, so connections) of its own, released together by
a barrier, as separate processes would be (``tests.support.store.together``):

- the outbox: ``enqueue`` exactly once per key; ``skip_pending`` only the pending rows of the
  named cycle, milestone, notices and agreement;
- outbox leases: concurrent ``claim``s never share a row; a leased row stays invisible to other
  claims until its lease expires or is released; ``release_stale_leases`` frees expired leases
  and those of dead processes on this host, never a live lease of another host; ``renew``
  extends only the rows its holder still holds.

Timer claims, the history chain and the fire read: ``tests/test_store_contract_history.py``.
"""

from __future__ import annotations

import threading
import time

from notifications.keys import message_id
from tests.support.store import (
    CYCLE_ID,
    OTHER_HOST,
    SEND_AT,
    claim_in,
    dead_pid,
    enqueue_all,
    notice,
    outbox,
    set_rows,
    together,
)
from workflow.rules import defaults
from workflow.store.database import Database
from workflow.store.leases import host_id, release_stale_leases, renew, worker_id
from workflow.store.outbox import enqueue, skip_pending

# --------------------------------------------------------------------------- 1. the outbox


def test_enqueue_is_exactly_once_per_key(db: Database) -> None:
    """Catches: a lost UNIQUE key or ON CONFLICT clause (a second row, or an error instead of
    False), a conflicting enqueue overwriting the first row, rowcount misread as True."""
    first = notice("TH-50", "sar6", "reminder", 14)
    again = notice("TH-50", "sar6", "reminder", 14, subject="changed", send_at=SEND_AT + 60)
    other = notice("TH-50", "sar6", "reminder", 7)
    with db.write() as conn:
        assert enqueue(conn, first, SEND_AT) is True
        assert enqueue(conn, again, SEND_AT) is False  # same transaction
    with db.write() as conn:
        assert enqueue(conn, again, SEND_AT) is False  # a later transaction
        assert enqueue(conn, other, SEND_AT) is True
    rows = outbox(db)
    assert sorted(rows) == sorted([first.key, other.key])
    row = rows[first.key]
    assert (row["subject"], row["send_at"], row["status"]) == ("subject", SEND_AT, "pending")
    assert row["message_id"] == message_id(first.key)


def test_concurrent_enqueues_of_one_key_make_one_row(db: Database) -> None:
    """Catches: a check-then-insert enqueue (both writers see no row, both insert or one
    fails with a unique violation instead of returning False)."""
    item = notice(None, "sar6", "digest-reminder", 14)

    def work(index: int, mine: Database, barrier: threading.Barrier) -> bool:
        barrier.wait()
        with mine.write() as conn:
            return enqueue(conn, item, SEND_AT + index)

    won = together(db.url, 4, work)
    assert sorted(won) == [False, False, False, True]
    assert list(outbox(db)) == [item.key]


def test_skip_pending_touches_only_pending_rows_of_its_scope(db: Database) -> None:
    """Catches: a skip that ignores the agreement, milestone, cycle or notice filter, or that
    rewrites rows already sent or failed (a sent letter must never read ``skipped``)."""
    rows = [
        notice("TH-50", "sar6", "reminder", 14),  # 0 in scope
        notice("TH-50", "sar6", "reminder", 7),  # 1 in scope
        notice("TH-50", "sar6", "reminder", 1),  # 2 in scope but already sent
        notice("TH-50", "sar6", "overdue", 1),  # 3 in scope
        notice("TH-50", "sar6", "escalation", 7),  # 4 another notice
        notice("TH-50", "sar6", "receipt"),  # 5 not a notice at all
        notice("TH-50", "esar9", "reminder", 14),  # 6 another milestone
        notice("TH-51", "sar6", "reminder", 14),  # 7 another agreement
        notice("TH-51", "sar6", "escalation", 7),  # 8 another agreement
        notice("TH-50", "sar6", "reminder", 14, cycle="2555"),  # 9 another cycle
        notice("TH-51", "sar6", "escalation", 7, cycle="2555"),  # 10 another cycle
        notice("TH-52", "sar6", "escalation", 7),  # 11 failed already
    ]
    keys = enqueue_all(db, rows)
    set_rows(db, [keys[2]], status="sent")
    set_rows(db, [keys[11]], status="failed")
    before = {key: row["status"] for key, row in outbox(db).items()}

    with db.write() as conn:
        skipped = skip_pending(conn, CYCLE_ID, "sar6", ("reminder", "overdue"), "TH-50")
    assert skipped == 3
    after = {key: row["status"] for key, row in outbox(db).items()}
    changed = {key for key in keys if after[key] != before[key]}
    assert changed == {keys[0], keys[1], keys[3]}
    assert {after[key] for key in changed} == {"skipped"}

    with db.write() as conn:  # every agreement of the milestone, in this cycle only
        skipped = skip_pending(conn, CYCLE_ID, "sar6", ("escalation",), None)
    assert skipped == 2
    final = {key: row["status"] for key, row in outbox(db).items()}
    changed = {key for key in keys if final[key] != after[key]}
    assert changed == {keys[4], keys[8]}
    assert (final[keys[2]], final[keys[11]], final[keys[10]]) == ("sent", "failed", "pending")


# --------------------------------------------------------------------------- 2. claims, leases


def test_concurrent_claims_never_share_a_row(db: Database) -> None:
    """Catches: a claim that reads then leases without the writer lock (SQLite) or without
    ``FOR UPDATE SKIP LOCKED`` (PostgreSQL): two dispatchers would send the same letter."""
    keys = enqueue_all(db, [notice(f"TH-{n}", "sar6", "reminder", 14) for n in range(10, 46)])
    workers = [f"{host_id()}:{n}:0.store" for n in range(4)]

    def work(index: int, mine: Database, barrier: threading.Barrier) -> list[str]:
        got: list[str] = []
        for _ in range(5):  # 36 rows, 4 × 3 a round: 3 rounds empty the queue, 2 find nothing
            barrier.wait()
            got += claim_in(mine, workers[index], batch=3)
        return got

    claimed = together(db.url, 4, work)
    everything = [key for got in claimed for key in got]
    assert sorted(everything) == sorted(keys), "a row claimed twice, or not at all"
    rows = outbox(db)
    for worker, got in zip(workers, claimed, strict=True):
        assert all(rows[key]["leased_by"] == worker for key in got)
    assert all(rows[key]["lease_until"] is not None for key in keys)


def test_a_leased_row_is_invisible_until_expired_or_released(db: Database) -> None:
    """Catches: a claim that ignores live leases; ``release_stale_leases`` that frees a live
    lease of another host or of a live process here (a letter sent twice), or that leaves an
    expired or dead process's lease held (a letter stranded)."""
    first, second, third = enqueue_all(
        db, [notice(org, "sar6", "reminder", 14) for org in ("TH-50", "TH-51", "TH-52")]
    )
    here = worker_id()  # this (live) process
    start = int(time.time())
    assert sorted(claim_in(db, here)) == sorted([first, second, third])
    assert claim_in(db, OTHER_HOST) == []  # all leased: nothing for another dispatcher
    # Every lease runs to at least start + LEASE_SECONDS: judged at ``start`` all are live.
    assert release_stale_leases(db, start) == 0
    assert claim_in(db, OTHER_HOST) == []

    # Time passes for one row: its lease expired; any dispatcher frees it and claims it.
    set_rows(db, [first], lease_until=start - 1)
    assert release_stale_leases(db, start) == 1
    assert outbox(db)[first]["lease_until"] is None
    assert claim_in(db, OTHER_HOST) == [first]

    # ``own``: this process's leases (a dispatch that did not finish); not the other host's.
    assert release_stale_leases(db, start, own=True) == 2
    rows = outbox(db)
    assert (rows[second]["lease_until"], rows[third]["lease_until"]) == (None, None)
    assert rows[first]["leased_by"] == OTHER_HOST
    assert rows[first]["lease_until"] >= start + defaults.LEASE_SECONDS
    assert sorted(claim_in(db, f"{host_id()}:1:0.third")) == sorted([second, third])

    # A dead process on this host: freed at once, though its lease has not expired.
    dead = f"{host_id()}:{dead_pid()}:0.dead"
    set_rows(db, [second], leased_by=dead)
    assert release_stale_leases(db, start) == 1
    rows = outbox(db)
    assert rows[second]["lease_until"] is None
    assert rows[first]["leased_by"] == OTHER_HOST and rows[first]["lease_until"] is not None
    assert rows[third]["lease_until"] is not None  # a live lease of a (pretend) live pid 1


def test_a_row_not_yet_due_is_not_claimed(db: Database) -> None:
    """Catches: a claim that ignores ``next_attempt_at`` (a retry sent before its backoff)."""
    (key,) = enqueue_all(db, [notice("TH-50", "sar6", "reminder", 14)])
    assert claim_in(db, OTHER_HOST, now=SEND_AT - 1) == []
    assert claim_in(db, OTHER_HOST, now=SEND_AT) == [key]


def test_renewal_extends_only_the_rows_still_held(db: Database) -> None:
    """Catches: a renewal keyed on the keys alone (it would re-lease a row sent meanwhile,
    resurrect a row released for retry, or steal a row another dispatcher took over)."""
    keys = enqueue_all(
        db, [notice(org, "sar6", "reminder", 14) for org in ("TH-50", "TH-51", "TH-52", "TH-53")]
    )
    held, retrying, sent, taken = keys
    mine = f"{host_id()}:1:0.mine"
    start = int(time.time())
    assert sorted(claim_in(db, mine, batch=3)) == sorted([held, retrying, sent])
    assert claim_in(db, OTHER_HOST) == [taken]
    set_rows(db, [retrying], lease_until=None, next_attempt_at=SEND_AT + 600)  # as dispatch does
    set_rows(db, [sent], status="sent", lease_until=None)
    before = outbox(db)

    later = start + 1000
    assert renew(db, mine, keys, wall=later) == 1
    after = outbox(db)
    assert after[held]["lease_until"] == later + defaults.LEASE_SECONDS
    assert after[held]["leased_by"] == mine
    for key in (retrying, sent, taken):
        assert after[key] == before[key], key
    assert renew(db, mine, [], wall=later) == 0
    assert renew(db, "someone-else", keys, wall=later) == 0
