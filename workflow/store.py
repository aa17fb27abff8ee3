"""The database port: one SQLAlchemy engine, read and write transactions, the chain lock.

SQLite (the embedded default) runs in WAL mode and every write transaction starts with
``BEGIN IMMEDIATE``, so writers queue on the busy timeout instead of failing on lock upgrades.
PostgreSQL serialises appends to the shared history chain with a transaction-scoped advisory
lock; everything else relies on row versions (optimistic locking) in the UPDATE itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from workflow.errors import BadInput, EnvironmentProblem
from workflow.migrate import ensure_schema

CHAIN_LOCK_ID = 0x5255_4252  # "RUBR": the advisory lock serialising history appends
DEFAULT_URL = "sqlite:///rubrong.db"


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
            self.engine: Engine = create_engine(parsed, connect_args={"timeout": 60})
            _configure_sqlite(self.engine)
        else:
            # Commands are short-lived: no pool, so nothing lingers; the service pools.
            pool: dict[str, Any] = (
                {"pool_pre_ping": True, "pool_size": 4} if pooled else {"poolclass": NullPool}
            )
            self.engine = create_engine(parsed, **pool)

    def create_schema(self) -> None:
        """Create a new database at the newest schema; refuse an outdated one (exit 1)."""
        try:
            ensure_schema(self.engine)
        except OperationalError as exc:
            raise EnvironmentProblem(f"database unreachable: {_reason(exc)}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a read transaction (a consistent snapshot)."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise EnvironmentProblem(f"database unreachable: {_reason(exc)}") from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside a write transaction: all of it commits, or none of it."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(rubrong_write=True)
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise EnvironmentProblem(f"database error: {_reason(exc)}") from exc

    def lock_chain(self, conn: Connection) -> None:
        """Serialise history writers until the transaction ends (SQLite already is).

        Every transaction that appends to the history takes it *first*, before touching any
        row: then what a writer reads (a tick's pending deliverables and agreement states) can
        not be changed under it by another writer, and the lock order never deadlocks.
        """
        if not self.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": CHAIN_LOCK_ID})

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
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get("rubrong_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def _reason(exc: OperationalError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
