"""Schema migrations: a database made by the previous schema is upgraded, data kept."""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

from tests.conftest import CYCLE_2554, Cli
from workflow.store.database import Database
from workflow.store.migrate import HEAD, current_revision, script_head, upgrade


def test_head_constant_matches_the_scripts() -> None:
    assert script_head() == HEAD


def test_a_previous_schema_is_upgraded_with_its_data(db_url: str, cli: Cli) -> None:
    db = Database(db_url)
    upgrade(db.engine, "0001")  # the schema as the previous release made it
    with db.engine.begin() as conn:
        assert current_revision(conn) == "0001"
        assert "lease_until" not in _outbox_columns(conn)
    db.dispose()

    refused = cli("status")
    assert refused.code == 1
    assert "rubrong db upgrade" in refused.err

    upgraded = cli("db", "upgrade")
    assert upgraded.code == 0, upgraded.err
    assert "0001" in upgraded.err and HEAD in upgraded.err
    assert cli("load", str(CYCLE_2554)).code == 0
    assert len(cli("status", "--json").json()) == 93
    assert cli("db", "upgrade").code == 0  # again: nothing to do


def _outbox_columns(conn: Connection) -> list[str]:
    return [column["name"] for column in inspect(conn).get_columns("outbox")]


def test_data_written_at_the_old_revision_survives(db_url: str, cli: Cli) -> None:
    db = Database(db_url)
    upgrade(db.engine, "0001")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO outbox (key, cycle_id, kind, recipient, recipient_kind, subject, "
                "send_at, status, attempts, next_attempt_at, message_id, template, "
                "template_version, context, created_at) VALUES ('k1', '2554', 'alert', "
                "'a@b.example', 'opdc', 's', 1, 'sent', 1, 1, '<k1@x>', 'mail/alert', '1', "
                "'{}', 1)"
            )
        )
    upgrade(db.engine)
    with db.engine.begin() as conn:
        row = conn.execute(text("SELECT status, lease_until FROM outbox WHERE key = 'k1'")).one()
        assert tuple(row) == ("sent", None)
    db.dispose()


def test_migrations_build_exactly_the_declared_schema(db_url: str) -> None:
    """Upgrading an empty database to the head gives what workflow/store/tables.py declares."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from workflow.store.tables import TABLES

    db = Database(db_url)
    upgrade(db.engine)
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), TABLES)
    db.dispose()
    assert differences == []
