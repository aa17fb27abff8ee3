"""``db upgrade``: move a database to the newest schema (Alembic)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from workflow.cli.app import app, settings
from workflow.store.database import Database
from workflow.store.migrate import upgrade

db_app = typer.Typer(help="Database schema: upgrade.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command(name="upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Upgrade the database schema to the newest revision (or REVISION)."""
    options = settings(ctx)
    db = Database(options.db_url)
    try:
        before, after = upgrade(db.engine, revision)
    finally:
        db.dispose()
    if before == after:
        sys.stderr.write(f"schema already at {after}\n")
    else:
        sys.stderr.write(f"schema upgraded from {before or 'empty'} to {after}\n")
