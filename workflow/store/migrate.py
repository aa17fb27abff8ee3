"""Schema versions with Alembic: a new database is created at the head revision; an older one
must be upgraded explicitly with ``rubrong db upgrade`` (so an upgrade is always a decision).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

from workflow.rules.errors import EnvironmentProblem
from workflow.store.dbapi import SCHEMA_HEAD

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = SCHEMA_HEAD  # the newest script in migrations/versions (set in workflow.store.dbapi)
_UPGRADE_LOCK = 0x5255_4200


def _config(conn: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def current_revision(conn: Connection) -> str | None:
    """The database's schema revision (None for an empty or pre-Alembic database)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # pragma: no cover - a table we cannot read counts as unversioned
        return None


def script_head() -> str:
    """The newest revision among the migration scripts."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the schema to ``target``; returns (before, after)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _UPGRADE_LOCK})
        from alembic import command

        before = current_revision(conn)
        command.upgrade(_config(conn), target)
        return before, current_revision(conn)


def ensure_schema(engine: Engine) -> None:
    """Create a new database at the head; refuse to run on an outdated one (exit 1)."""
    with engine.connect() as conn:
        revision = current_revision(conn)
        if revision == HEAD:
            return
        has_tables = bool(inspect(conn).get_table_names())
    if revision is None and not has_tables:
        try:
            upgrade(engine)
        except Exception:
            # Another process may have created it at the same moment: accept that outcome.
            with engine.connect() as conn:
                if current_revision(conn) != HEAD:
                    raise
        return
    raise EnvironmentProblem(
        f"the database schema is at revision {revision or 'unversioned'}, this rubrong needs "
        f"{HEAD}: run `rubrong db upgrade` (back the database up first)"
    )
