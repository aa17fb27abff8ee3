"""Outbox leases: which dispatcher is sending a row right now, and taking rows back from the dead.

A dispatcher *claims* due rows by writing ``leased_by`` (its worker id) and ``lease_until``
(wall clock, ``LEASE_SECONDS`` ahead, 30 s); other dispatchers skip a row while its lease runs.
While it renders and sends, a :class:`Heartbeat` thread renews the lease of the rows it still
holds every ``LEASE_RENEW_SECONDS``, independently of the sending (which may wait on a silent
server: every SMTP step has a finite timeout, but a batch of them adds up). So a live dispatcher
keeps its rows however slow its server is, and a dead one's come free within one short lease.

Before dispatching, ``release_stale_leases`` frees at once (on either backend, on any host):

- expired leases of anyone (a dispatcher on another host that died);
- leases of a dead process on this host: its pid is gone, a zombie, or reused by a process that
  started at another time than the one that wrote the lease;
- with ``own``, those of this very process (the service, between wakes: a dispatch that failed
  half-way, the database gone after the SMTP server took the letters).

The worker id is ``HOST:PID:NONCE``. HOST is ``RUBRONG_HOST_ID`` when set (tests simulate other
hosts with it), else the host name; NONCE is the process's start time (Linux ``/proc``, 0
elsewhere) and a random part drawn once per process, so a reused pid cannot pass for the old
holder. Only leases of this HOST are judged by pid; any other waits for its lease to expire.

On PostgreSQL the renewals and releases skip rows another transaction has locked (``SKIP
LOCKED``): those are being claimed or recorded right now, and waiting for them could deadlock
with a dispatcher recording its batch.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, select, text, update

from workflow.rules import defaults
from workflow.store.database import Database
from workflow.store.outbox import OUTBOX

HOST_ENV = "RUBRONG_HOST_ID"
_IDENTITY: dict[int, str] = {}  # pid → worker id (a forked child draws its own)


def host_id() -> str:
    """This host's id in worker ids: ``RUBRONG_HOST_ID``, else the host name."""
    return os.environ.get(HOST_ENV, "").strip() or socket.gethostname()


def worker_id() -> str:
    """This process's worker id, ``HOST:PID:START.RANDOM`` (the same for its whole life)."""
    pid = os.getpid()
    found = _IDENTITY.get(pid)
    if found is None:
        found = _IDENTITY[pid] = f"{host_id()}:{pid}:{_started(pid) or 0}.{secrets.token_hex(4)}"
    return found


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            line = stat.read()
    except OSError:
        return None
    return line.rpartition(")")[2].split()


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), or None."""
    fields = _stat(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def holder_is_dead(holder: str, *, own: bool = False) -> bool:
    """True for a lease of a process on this host that no longer runs (or, with ``own``, of
    this process). False for other hosts and for ids it cannot read: those wait for expiry."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host_id() or not parts[1].isdigit():
        return False
    if holder == worker_id():
        return own
    pid, nonce = int(parts[1]), parts[2]
    if pid == os.getpid():
        return True  # our pid, not our nonce: an earlier process that had it is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, under another user
    fields = _stat(pid)
    if fields is not None and fields[0] in ("Z", "X"):
        return True  # killed, not yet reaped
    start, dot, _ = nonce.partition(".")
    if dot and start.isdigit() and start != "0":  # ids without a start time: trust the pid
        now_start = _started(pid)
        if now_start is not None and now_start != start:
            return True  # the pid was reused by a process started later
    return False


def claim(
    conn: Connection, db: Database, now: int, worker: str, batch: int
) -> list[dict[str, Any]]:
    """Lease up to ``batch`` pending rows due at ``now`` whose lease is free; the rows, by key.

    Runs in the caller's write transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
    writer lock on SQLite), so two dispatchers never claim the same row.
    """
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
        .values(lease_until=wall + defaults.LEASE_SECONDS, leased_by=worker)
    )
    return [
        dict(row._mapping)
        for row in conn.execute(select(OUTBOX).where(OUTBOX.c.key.in_(keys)).order_by(OUTBOX.c.key))
    ]


def _update_free(conn: Connection, db: Database, where: Any, **values: Any) -> int:
    """UPDATE the rows matching ``where``; on PostgreSQL only those no transaction has locked
    (they are locked first, ``SKIP LOCKED``). The number of rows updated."""
    if db.is_sqlite:
        return int(conn.execute(update(OUTBOX).where(where).values(**values)).rowcount)
    free = select(OUTBOX.c.key).where(where).with_for_update(skip_locked=True)
    keys = [row.key for row in conn.execute(free)]
    if not keys:
        return 0
    return int(conn.execute(update(OUTBOX).where(OUTBOX.c.key.in_(keys)).values(**values)).rowcount)


def renew(db: Database, worker: str, keys: Sequence[str], wall: int | None = None) -> int:
    """Push the lease of those of ``keys`` that ``worker`` still holds (pending, leased) to
    ``wall`` + ``LEASE_SECONDS``; the number of rows renewed."""
    if not keys:
        return 0
    until = int(time.time() if wall is None else wall) + defaults.LEASE_SECONDS
    held = (
        OUTBOX.c.key.in_(list(keys))
        & (OUTBOX.c.leased_by == worker)
        & (OUTBOX.c.status == "pending")
        & OUTBOX.c.lease_until.is_not(None)
    )
    with db.write() as conn:
        return _update_free(conn, db, held, lease_until=until)


class Heartbeat:
    """A daemon thread renewing the lease of the rows a dispatcher holds (``hold``).

    Use as a context manager around a dispatch; the thread starts with the first ``hold`` and
    stops on exit. A renewal that fails (the database away) is tried again at the next beat.
    """

    def __init__(self, db: Database, worker: str, every: float | None = None) -> None:
        self.db = db
        self.worker = worker
        self.every = defaults.LEASE_RENEW_SECONDS if every is None else every
        self.renewals = 0
        self.failures = 0
        self._keys: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, keys: Sequence[str]) -> None:
        """From now on renew ``keys`` (the batch just claimed) instead of the previous ones."""
        with self._lock:
            self._keys = tuple(keys)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                keys = self._keys
            try:
                renew(self.db, self.worker, keys)
                self.renewals += 1
            except Exception:  # the database is away: the lease runs on, try again next beat
                self.failures += 1

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            # A renewal still running touches only rows this dispatcher holds, and every row
            # of the last batch is recorded by now (no longer leased): no need to wait long.
            self._thread.join(timeout=self.every)


def release_stale_leases(db: Database, wall: int, *, own: bool = False) -> int:
    """Free the leases of pending rows that nobody alive holds: expired ones (anyone's, any
    host), those of dead processes on this host, and with ``own`` this process's own (left
    by a dispatch that did not finish). The number of rows freed."""
    pending = (OUTBOX.c.status == "pending") & OUTBOX.c.lease_until.is_not(None)
    expired = pending & (OUTBOX.c.lease_until < wall)
    live = pending & (OUTBOX.c.lease_until >= wall)
    with db.read() as conn:
        holders = [
            row.leased_by
            for row in conn.execute(select(OUTBOX.c.leased_by).where(live).distinct())
            if row.leased_by
        ]
        stale = conn.execute(select(OUTBOX.c.key).where(expired).limit(1)).first() is not None
    dead = [holder for holder in holders if holder_is_dead(holder, own=own)]
    if not dead and not stale:
        return 0
    where = expired | (live & OUTBOX.c.leased_by.in_(dead)) if dead else expired
    with db.write() as conn:
        return _update_free(conn, db, where, lease_until=None, leased_by=None)
