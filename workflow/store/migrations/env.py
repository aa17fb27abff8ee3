"""Alembic environment: runs migrations on the connection ``workflow.store.migrate`` passes in."""

from __future__ import annotations

from alembic import context

from workflow.store.tables import TABLES

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=TABLES,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
