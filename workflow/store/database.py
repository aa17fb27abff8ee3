"""The database port: one SQLAlchemy engine, read and write transactions, the chain lock.

SQLite (the embedded default) runs in WAL mode and every write transaction starts with
``BEGIN IMMEDIATE``, so writers queue on the busy timeout instead of failing on lock upgrades.
PostgreSQL serialises appends to the shared history chain with a transaction-scoped advisory
lock; everything else relies on row versions (optimistic locking) in the UPDATE itself.

The hot path (``fire``) takes one connection (``connect``) for its single read and its write
``transaction``, and runs its few statements on the driver's own cursor (``hot``): SQLAlchemy's
per-statement machinery costs more than SQLite's own work for statements this small.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.pool import NullPool

from workflow.rules.defaults import DEFAULT_URL
from workflow.rules.errors import BadInput, EnvironmentProblem
from workflow.store.dbapi import BUSY_TIMEOUT_SECONDS, SQLITE_CACHE_KIB, SQLITE_MMAP_BYTES
from workflow.store.dbapi import reason as _reason
from workflow.store.migrate import ensure_schema
from workflow.store.read_views import STREAM_BATCH, in_paramstyle

CHAIN_LOCK_ID = 0x5255_4252  # "RUBR": the advisory lock serialising history appends


class Database:
    """A database URL made usable: schema creation, transactions, dialect specifics."""

    def __init__(self, url: str = DEFAULT_URL, *, pooled: bool = False) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise BadInput(f"not a database URL: {url!r}") from exc
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            # A pool even for short commands: closing the last WAL connection checkpoints.
            self.engine: Engine = create_engine(
                parsed, connect_args={"timeout": BUSY_TIMEOUT_SECONDS}
            )
            _configure_sqlite(self.engine)
        else:
            # Commands are short-lived: no pool, so nothing lingers; the service pools.
            pool: dict[str, Any] = (
                {"pool_pre_ping": True, "pool_size": 4} if pooled else {"poolclass": NullPool}
            )
            self.engine = create_engine(parsed, **pool)
        # The same engine whose connections open write transactions (BEGIN IMMEDIATE on SQLite)
        self._writing = self.engine.execution_options(rubrong_mode="write")
        # Errors that mean "the database is unwell" (exit 1): SQLAlchemy's, and the driver's
        # own, raised by the statements that ``hot`` runs on the driver's cursor.
        self._unwell: tuple[type[Exception], ...] = (
            OperationalError,
            self.engine.dialect.loaded_dbapi.OperationalError,
        )

    def create_schema(self) -> None:
        """Create a new database at the newest schema; refuse an outdated one (exit 1)."""
        try:
            ensure_schema(self.engine)
        except self._unwell as exc:
            raise EnvironmentProblem(f"database unreachable: {_reason(exc)}") from exc
        except DatabaseError as exc:  # e.g. a file that is not a database: one line, exit 1
            raise EnvironmentProblem(f"database unusable: {_reason(exc)}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a read transaction (a consistent snapshot)."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except self._unwell as exc:
            raise EnvironmentProblem(f"database unreachable: {_reason(exc)}") from exc

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """One connection for reads, then (``transaction``) a write: ``fire``'s hot path.

        Statements run with ``hot`` outside ``transaction`` stand alone: on SQLite each runs in
        autocommit mode (a consistent snapshot on its own), so a single-statement read is the
        cheapest there is. (A SQLAlchemy statement there would begin the write transaction.)
        """
        try:
            with self._writing.connect() as conn:
                yield conn
        except self._unwell as exc:
            raise EnvironmentProblem(f"database error: {_reason(exc)}") from exc

    @contextmanager
    def transaction(self, conn: Connection) -> Iterator[Connection]:
        """A write transaction on a connection from ``connect``: all of it commits, or none.

        Whatever the reads before it left open ends first (PostgreSQL's implicit transaction).
        The transaction is the driver's own (on SQLite ``BEGIN IMMEDIATE``, as in ``write``),
        without SQLAlchemy's bookkeeping; a SQLAlchemy statement run inside joins it, and then
        the commit goes through SQLAlchemy.
        """
        if conn.in_transaction():
            conn.rollback()
        driver: Any = conn.connection.driver_connection
        driver.rollback()
        if self.is_sqlite:
            driver.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction():
                conn.rollback()
            driver.rollback()
            raise
        if conn.in_transaction():
            conn.commit()
        else:
            driver.commit()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside a write transaction: all of it commits, or none of it."""
        try:
            with self._writing.connect() as conn, conn.begin():
                yield conn
        except self._unwell as exc:
            raise EnvironmentProblem(f"database error: {_reason(exc)}") from exc

    def lock_chain(self, conn: Connection) -> None:
        """Serialise history writers until the transaction ends (SQLite already is).

        Every transaction that appends to the history takes it *first*, before touching any
        row: then what a writer reads (a tick's pending deliverables and agreement states) can
        not be changed under it by another writer, and the lock order never deadlocks.
        """
        if not self.is_sqlite:
            hot(conn, "SELECT pg_advisory_xact_lock(?)", (CHAIN_LOCK_ID,))

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from pysqlite so that we can say IMMEDIATE for writes.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Sized for a national cycle (10⁵ agreements, a history of millions of entries): the
        # default 2 MB page cache made every sweep and fire read pages from the OS at 10⁴
        # agreements. The cache is per connection and only grows as pages are touched.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        driver: Any = conn.connection.driver_connection
        if driver.in_transaction:  # begun on the driver (Database.transaction): join it
            return
        mode = conn.get_execution_options().get("rubrong_mode")
        statement = "BEGIN IMMEDIATE" if mode == "write" else "BEGIN"
        try:  # on the driver itself (cheaper), its failure reported as SQLAlchemy's would be
            driver.execute(statement)
        except sqlite3.OperationalError as exc:
            raise OperationalError(statement, (), exc) from exc


_NATIVE: dict[tuple[str, str], str] = {}


def native(conn: Connection, sql: str) -> str:
    """``sql`` written with ``?`` placeholders, in the driver's own paramstyle.

    For statements run on the driver (``hot``, or ``conn.exec_driver_sql``) with plain
    parameter tuples. ``SQL`` must hold no other ``?`` and no ``%``.
    """
    style = conn.dialect.paramstyle
    key = (style, sql)
    found = _NATIVE.get(key)
    if found is None:
        found = _NATIVE[key] = sql if style == "qmark" else sql.replace("?", "%s")
    return found


def hot(conn: Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """Run one hot-path statement on the driver's own cursor, in ``conn``'s transaction.

    For the few statements every ``fire`` runs: no SQLAlchemy statement, execution context or
    result object is built (each costs more than SQLite's own work). ``sql`` is written with
    ``?`` placeholders (``native``); the driver's cursor is returned (``fetchall``,
    ``rowcount``). A failure raises the driver's own error: ``Database``'s transactions turn
    its OperationalError into exit 1 as they do SQLAlchemy's.
    """
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(native(conn, sql), params)
    return cursor


def hot_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """``hot`` for one statement run once per row (``executemany``)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.executemany(native(conn, sql), rows)


class ConnectionReader:
    """A ``workflow.store.read_views.Reader`` over a SQLAlchemy connection, in its transaction:
    the web, the API and ``workflow.store.views`` run the read views' statements through it (on
    the driver, in its paramstyle), so they print what the CLI's fast path prints."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """The rows of ``sql`` (``:name`` parameters)."""
        statement = in_paramstyle(sql, self.conn.dialect.paramstyle)
        return self.conn.exec_driver_sql(statement, dict(params)).all()

    def stream(self, sql: str, params: Mapping[str, Any]) -> Iterator[Sequence[Any]]:
        """The rows of ``sql`` in batches (``yield_per``: a server-side cursor on PostgreSQL)."""
        statement = in_paramstyle(sql, self.conn.dialect.paramstyle)
        streaming = self.conn.execution_options(yield_per=STREAM_BATCH)
        yield from streaming.exec_driver_sql(statement, dict(params))
