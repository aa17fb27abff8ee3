"""User and evidence commands: ``user add|list|revoke`` and ``export AGREEMENT --evidence DIR``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from workflow.cli.app import CycleOption, JsonOption, Settings, app, print_json, settings
from workflow.evidence import export_evidence
from workflow.users import add_user, revoke_user, user_rows

user_app = typer.Typer(help="API users: add (prints a token once), list, revoke.")
app.add_typer(user_app, name="user")


@user_app.command(name="add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="user name (unique)")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="admin, province:TH-50, group:ID, agency:ID, committee, evaluator, auditor",
        ),
    ],
) -> None:
    """Create an API user; its token is printed once, as the last line of stdout."""
    options: Settings = ctx.obj
    token = add_user(options.database(), options.clock, name, role)
    sys.stdout.write(f"user {name} ({role}) created; its token is shown only this once:\n")
    sys.stdout.write(token + "\n")


@user_app.command(name="list")
def user_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every user: name, role, token prefix, created, revoked (never a token)."""
    options: Settings = ctx.obj
    with options.database().read() as conn:
        rows = user_rows(conn)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = "active" if row["active"] else f"revoked {row['revoked_at']}"
        sys.stdout.write(
            f"{row['name']:<20} {row['role']:<28} {row['token_prefix']}…  "
            f"created {row['created_at']}  {state}\n"
        )


@user_app.command(name="revoke")
def user_revoke(ctx: typer.Context, name: Annotated[str, typer.Argument(help="user name")]) -> None:
    """Revoke a user's token at once (the API then answers 401)."""
    options: Settings = ctx.obj
    changed = revoke_user(options.database(), options.clock, name)
    sys.stderr.write(f"revoked {name}\n" if changed else f"{name} was already revoked\n")


@app.command(name="export")
def export_command(
    ctx: typer.Context,
    agreement: Annotated[str, typer.Argument(help="organisation id")],
    evidence: Annotated[
        Path, typer.Option("--evidence", help="directory to write the pack into (new or empty)")
    ],
    cycle: CycleOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write an agreement's evidence pack (check: `python -m workflow.evidence verify DIR`)."""
    options = settings(ctx, cycle)
    manifest = export_evidence(
        options.database(), options.clock, agreement, evidence, options.cycle
    )
    if as_json:
        print_json(manifest)
        return
    sys.stdout.write(
        f"{evidence}: {len(manifest['files']) + 2} files; chain of "
        f"{manifest['chain']['entries']} entries, head {manifest['chain']['head']}\n"
        f"check offline: python -m workflow.evidence verify {evidence}  "
        f"or  (cd {evidence} && sha256sum -c SHA256SUMS)\n"
    )
