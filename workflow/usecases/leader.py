"""Who runs the timers when several ``rubrong run`` processes share one PostgreSQL.

One process at a time is the *leader*: it holds a session-level advisory lock
(``pg_try_advisory_lock``) on a connection of its own, open for as long as it leads. Only the
leader ticks; every process dispatches mail (rows are claimed with ``FOR UPDATE SKIP LOCKED``).
When the leader dies its session ends and PostgreSQL frees the lock; followers try to take it at
every wake and at least every few seconds (``rubrong run --leader-retry``), so the timers move to
another process within seconds. A leader checks its session at every wake before it ticks; when
the session is gone (PostgreSQL restarted, the connection cut) it is a follower again and
competes for the lock like the others.

Leadership saves work; it is not what makes timers exactly-once. ``tick`` records each instant
in ``timers_done`` inside the transaction that processes it, so two processes that both believe
they lead (an old leader whose session died in the middle of a tick) still process each instant
once: the second waits on the first's uncommitted row, then finds it done.

The lock key is (``LOCK_CLASS``, ``hashtext(current_schema())``): advisory locks are scoped to the
database, and the schema part keeps rubrong databases that live in different schemas of one
PostgreSQL database (the test suite's) from sharing a leader.

On SQLite there is one service process per database file: it is always the leader.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Protocol

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from workflow.store.database import Database

LOCK_CLASS = 0x5255_424C  # "RUBL": the first half of the leader lock's key
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:cls, hashtext(current_schema()))")
_UNLOCK = text("SELECT pg_advisory_unlock(:cls, hashtext(current_schema()))")
# libpq: give up connecting after 5 s; notice a silent peer within ~15 s.
_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}
# The server's side of the same session: a leader cut off by the network (its host alive, so
# no FIN ever comes) loses the session, and with it the lock, within ~15 s rather than the
# kernel's default two hours. Ignored on Unix-domain sockets.
_SERVER_KEEPALIVES = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 15000",
)


class Log(Protocol):
    """The service's structured log (``workflow.usecases.service.JsonLog``)."""

    def __call__(self, action: str, **fields: Any) -> None:
        """Write one line."""
        ...


class Leadership(Protocol):
    """Whether this process runs the timers."""

    @property
    def leading(self) -> bool:
        """True while this process is the leader (as of the last ``refresh``)."""
        ...

    def refresh(self) -> bool:
        """Check (leader) or try to take (follower) the leadership; never raises."""
        ...

    def close(self) -> None:
        """Give the leadership up (end the session)."""
        ...


class SoleLeader:
    """SQLite: one process, always the leader."""

    def __init__(self, log: Log | None = None) -> None:
        self.log = log
        self._announced = False

    @property
    def leading(self) -> bool:
        """Always."""
        return True

    def refresh(self) -> bool:
        """True; the first call logs it."""
        if not self._announced and self.log is not None:
            self.log("leader", role="leader", pid=os.getpid(), lock="sqlite (one process)")
        self._announced = True
        return True

    def close(self) -> None:
        """Nothing to give up."""


class AdvisoryLeader:
    """PostgreSQL: the holder of a session-level advisory lock leads."""

    def __init__(self, url: str, log: Log) -> None:
        self.engine = create_engine(
            make_url(url),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args=_CONNECT_ARGS,
        )
        self.log = log
        self.session: Connection | None = None
        self._leading = False
        self._announced = False

    @property
    def leading(self) -> bool:
        """True while this process holds the lock (as of the last ``refresh``)."""
        return self._leading

    def refresh(self) -> bool:
        """A leader pings its session; a follower (or a leader that lost it) tries the lock."""
        if self._leading:
            try:
                assert self.session is not None
                self.session.execute(text("SELECT 1"))
                return True
            except Exception as exc:  # the session is gone, and the lock with it
                self._drop()
                self._set(False, reason=f"session lost: {_reason(exc)}")
        try:
            if self.session is None:
                self.session = self._connect()
            got = bool(self.session.execute(_TRY_LOCK, {"cls": LOCK_CLASS}).scalar())
        except Exception as exc:  # no database: a follower until it comes back
            self._drop()
            self._set(False, reason=f"cannot reach the database: {_reason(exc)}")
            return False
        self._set(got)
        return got

    def close(self) -> None:
        """End the session: PostgreSQL frees the lock at once."""
        if self._leading:  # logged first: the line comes before any successor's
            self.log("leader", role="released", pid=os.getpid())
            if self.session is not None:  # at once, not when the server sees the socket close
                with contextlib.suppress(Exception):
                    self.session.execute(_UNLOCK, {"cls": LOCK_CLASS})
        self._leading = False
        self._drop()
        self.engine.dispose()

    def _connect(self) -> Connection:
        session = self.engine.connect()
        for statement in _SERVER_KEEPALIVES:
            with contextlib.suppress(DBAPIError):  # an older server: keep its default
                session.execute(text(statement))
        return session

    def _set(self, leading: bool, reason: str | None = None) -> None:
        if leading == self._leading and self._announced:
            return
        self._leading = leading
        self._announced = True
        fields: dict[str, Any] = {"role": "leader" if leading else "follower", "pid": os.getpid()}
        if reason is not None:
            fields["reason"] = reason
        self.log("leader", **fields)

    def _drop(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(Exception):  # a dead one may fail to close: gone anyway
                session.invalidate()  # never returned to a pool: the socket is closed
                session.close()


def leadership_for(db: Database, log: Log) -> Leadership:
    """The advisory lock on PostgreSQL; the sole process on SQLite."""
    if db.is_sqlite:
        return SoleLeader(log)
    return AdvisoryLeader(db.url, log)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text_ = str(orig).strip()
    return text_.splitlines()[0] if text_ else type(orig).__name__
