"""The database through its plain DB-API driver, for the reads a user waits on.

``rubrong status TH-50`` spent most of a second importing SQLAlchemy and the SQLModel schema
for a few milliseconds of SQL. ``driver_reader`` opens the same database on the driver itself
(``sqlite3``; ``psycopg`` for PostgreSQL) and hands out a ``workflow.store.read_views.Reader``, so
those commands import neither.

It only takes the cases it can answer exactly as ``workflow.store.database.Database`` would: a
``sqlite:///PATH`` file that exists, or a ``postgresql://`` / ``postgresql+psycopg://`` URL, at
the newest schema. Everything else (a URL form or option only SQLAlchemy knows, an in-memory
or missing database to create, a schema to upgrade, a file that is no database) yields None,
and the caller reads through ``Database``: the same rows, errors and exit codes as ever.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from workflow.rules.errors import EnvironmentProblem
from workflow.store.read_views import STREAM_BATCH, Reader, in_paramstyle

# The schema revision this rubrong runs on (``workflow.store.migrate.HEAD``). Keep it equal to the
# newest script in workflow/store/migrations/versions (tests/test_migrations.py checks it).
SCHEMA_HEAD = "0006"

BUSY_TIMEOUT_SECONDS = 60  # SQLite: wait this long for a writer's lock, as every command does
SQLITE_CACHE_KIB = 64 * 1024  # page cache per connection (KiB): a national cycle's hot pages
# No memory-mapped reads: every mapped page a year touches counts in the process's memory (a
# 10⁴-agreement simulate peaked at 446 MB with 256 MiB mapped, 244 MB without, same speed).
SQLITE_MMAP_BYTES = 0

_SQLITE_SCHEMES = ("sqlite:///", "sqlite+pysqlite:///")
_POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg://")


class DriverReader:
    """A ``Reader`` on a DB-API connection."""

    def __init__(self, connection: Any, paramstyle: str) -> None:
        self.connection = connection
        self.paramstyle = paramstyle

    def rows(self, sql: str, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """The rows of ``sql`` (``:name`` parameters), on the connection's own cursor."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(in_paramstyle(sql, self.paramstyle), params)
            found: list[Sequence[Any]] = cursor.fetchall()
            return found
        finally:
            cursor.close()

    def stream(self, sql: str, params: Mapping[str, Any]) -> Iterator[Sequence[Any]]:
        """The rows of ``sql`` as fetched: a sqlite3 cursor reads lazily; on PostgreSQL a
        named (server-side) cursor, inside the read's transaction."""
        named = self.paramstyle in ("pyformat", "format")
        cursor = (
            self.connection.cursor(name="rubrong_stream") if named else self.connection.cursor()
        )
        try:
            if named:
                cursor.itersize = STREAM_BATCH
            cursor.execute(in_paramstyle(sql, self.paramstyle), params)
            while batch := cursor.fetchmany(STREAM_BATCH):
                yield from batch
        finally:
            # A reader that stopped early (stdout closed) may be finalised after its
            # connection: then there is nothing left to free.
            with suppress(Exception):
                cursor.close()


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///PATH`` URL (relative to the working directory; an absolute
    one is ``sqlite:////PATH``), percent-decoded as SQLAlchemy does. None for other URLs, an
    in-memory database, and URLs with query options."""
    for scheme in _SQLITE_SCHEMES:
        if url.startswith(scheme):
            rest = url[len(scheme) :]
            if not rest or rest == ":memory:" or "?" in rest or "#" in rest:
                return None
            return unquote(rest)
    return None


def postgres_conninfo(url: str) -> str | None:
    """A libpq URI for a ``postgresql://`` or ``postgresql+psycopg://`` URL (its query
    options are libpq's own, as SQLAlchemy passes them on); None for other URLs."""
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return "postgresql://" + url[len(scheme) :]
    return None


def reason(exc: Exception) -> str:
    """The first line of a database error (the driver's own, under SQLAlchemy's wrapper)."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def _open_sqlite(path: str) -> Any:
    """An existing SQLite file, configured for reads as ``Database`` configures it; None
    when it cannot be opened (``Database`` creates it, or says why it cannot)."""
    uri = Path(path).absolute().as_uri() + "?mode=rw"
    try:
        connection = sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
        )
    except sqlite3.Error:
        return None
    try:
        for pragma in (
            f"busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}",
            f"cache_size=-{SQLITE_CACHE_KIB}",
            f"mmap_size={SQLITE_MMAP_BYTES}",
            "temp_store=MEMORY",
        ):
            connection.execute(f"PRAGMA {pragma}")
        connection.execute("BEGIN")  # one snapshot for every statement of the read
    except sqlite3.Error:
        connection.close()
        return None
    return connection


def _open_postgres(conninfo: str) -> Any:
    """A PostgreSQL connection (a transaction begins with its first statement); exit 1 when
    the server cannot be reached, with ``Database``'s message; None for a URL libpq refuses."""
    import psycopg

    try:
        return psycopg.connect(conninfo)
    except psycopg.OperationalError as exc:
        raise EnvironmentProblem(f"database unreachable: {reason(exc)}") from exc
    except psycopg.Error:
        return None


def _connect(url: str) -> tuple[Any, Any] | None:
    """(the DB-API driver module, a connection to ``url`` on it), or None (``Database``'s)."""
    path = sqlite_path(url)
    if path is not None:
        connection = _open_sqlite(path)
        return None if connection is None else (sqlite3, connection)
    conninfo = postgres_conninfo(url)
    if conninfo is None:
        return None
    import psycopg

    connection = _open_postgres(conninfo)
    return None if connection is None else (psycopg, connection)


@contextmanager
def driver_reader(url: str) -> Iterator[Reader | None]:
    """A ``Reader`` over the driver's own connection to ``url``, inside one read transaction;
    None when this URL or database is ``Database``'s to handle (see the module docstring).

    A driver's operational error while reading (a lock held past the busy timeout, a lost
    server) is exit 1, ``database unreachable: …``, as ``Database.read`` reports it.
    """
    connected = _connect(url)
    if connected is None:
        yield None
        return
    driver, connection = connected
    try:
        reader = DriverReader(connection, driver.paramstyle)
        try:
            revision = reader.rows("SELECT version_num FROM alembic_version", {})
        except driver.Error:  # no schema yet, or no database at all
            revision = []
        if [tuple(row) for row in revision] != [(SCHEMA_HEAD,)]:
            yield None  # to create, to refuse (an older schema), or to report
            return
        try:
            yield reader
        except driver.OperationalError as exc:
            raise EnvironmentProblem(f"database unreachable: {reason(exc)}") from exc
    finally:
        connection.close()
