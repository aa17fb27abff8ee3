"""User and evidence commands: ``user add|list|passwd|revoke``, ``user token add|list|revoke|
rotate`` and ``export AGREEMENT --evidence DIR``."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from workflow.cli.app import CycleOption, JsonOption, Settings, app, print_json, settings
from workflow.rules.errors import BadInput
from workflow.store.security import record_event
from workflow.store.tokens import add_token, revoke_token, rotate_token, token_rows
from workflow.store.users import add_user, check_new_password, revoke_user, set_password, user_rows
from workflow.usecases.evidence import export_evidence

user_app = typer.Typer(
    help="Accounts: add (prints an API token once), list, passwd, token, revoke."
)
app.add_typer(user_app, name="user")
token_app = typer.Typer(help="An account's API tokens: add, list, revoke, rotate.")
user_app.add_typer(token_app, name="token")
NameArgument = Annotated[str, typer.Argument(help="user name")]


@user_app.command(name="add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="user name (unique among active accounts)")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help=(
                "admin, committee, evaluator, auditor, or province:CODE, group:ID, agency:ID "
                "naming an organisation of the latest loaded cycle"
            ),
        ),
    ],
    email: Annotated[
        str | None,
        typer.Option("--email", help="the person's e-mail address (sign-in links go there)"),
    ] = None,
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="the name pages show (optional)")
    ] = None,
) -> None:
    """Create an account; its API token is printed once, as the last line of stdout."""
    options: Settings = ctx.obj
    token = add_user(options.database(), options.clock, name, role, email, display_name)
    sys.stdout.write(f"user {name} ({role}) created; its token is shown only this once:\n")
    sys.stdout.write(token + "\n")


@user_app.command(name="list")
def user_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every account: name, role, e-mail, token prefix, created, revoked (never a token)."""
    options: Settings = ctx.obj
    with options.database().read() as conn:
        rows = user_rows(conn)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked"] else "active"
        sys.stdout.write(
            f"{row['name']:<20} {row['role']:<28} {row['email'] or '-':<32} "
            f"{row['token_prefix'] or '-'}…  created {row['created_at']}  {state}\n"
        )


@user_app.command(name="passwd")
def user_passwd(ctx: typer.Context, name: NameArgument) -> None:
    """Set the account's password (at least 12 characters): read from stdin when it is not a
    terminal, else asked for twice."""
    options: Settings = ctx.obj
    if sys.stdin.isatty():
        first = getpass.getpass(f"new password for {name}: ")
        if getpass.getpass("again: ") != first:
            raise BadInput("the two passwords differ; nothing changed")
        password = first
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    check_new_password(password)
    set_password(options.database(), name, password)
    sys.stderr.write(f"password of {name} set\n")


@user_app.command(name="revoke")
def user_revoke(ctx: typer.Context, name: NameArgument) -> None:
    """Revoke the active account of that name at once: its tokens answer 401 and its browser
    sessions end at their next request."""
    options: Settings = ctx.obj
    db = options.database()
    changed = revoke_user(db, options.clock, name)
    if changed:
        record_event(
            db,
            options.clock,
            actor="admin",
            action=f"user revoke (user {name})",
            outcome="ok",
            reason="account, sessions and tokens revoked",
            address="cli",
        )
    sys.stderr.write(f"revoked {name}\n" if changed else f"{name} was already revoked\n")


@token_app.command(name="add")
def token_add(
    ctx: typer.Context,
    name: NameArgument,
    label: Annotated[str | None, typer.Option("--label", help="what the token is for")] = None,
) -> None:
    """Issue another API token for the account; printed once, as the last line of stdout."""
    options: Settings = ctx.obj
    token = add_token(options.database(), options.clock, name, label)
    sys.stdout.write(f"new token for {name}; it is shown only this once:\n{token}\n")


@token_app.command(name="list")
def token_list(ctx: typer.Context, name: NameArgument, as_json: JsonOption = False) -> None:
    """The account's tokens: prefix, label, created, last used, revoked (never the token)."""
    options: Settings = ctx.obj
    with options.database().read() as conn:
        rows = token_rows(conn, name)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked"] else "active"
        sys.stdout.write(
            f"{row['prefix']}…  {row['label'] or '-':<20} created {row['created_at']}  "
            f"last used {row['last_used_at'] or 'never'}  {state}\n"
        )


@token_app.command(name="revoke")
def token_revoke(
    ctx: typer.Context,
    name: NameArgument,
    prefix: Annotated[str, typer.Argument(help="the token's prefix (user token list)")],
) -> None:
    """Revoke one token of the account at once (it then answers 401)."""
    options: Settings = ctx.obj
    db = options.database()
    revoke_token(db, options.clock, name, prefix)
    record_event(
        db,
        options.clock,
        actor="admin",
        action=f"user token revoke (user {name}) {prefix}",
        outcome="ok",
        reason="token revoked",
        address="cli",
    )
    sys.stderr.write(f"revoked token {prefix}… of {name}\n")


@token_app.command(name="rotate")
def token_rotate(
    ctx: typer.Context,
    name: NameArgument,
    prefix: Annotated[str, typer.Argument(help="the token's prefix (user token list)")],
) -> None:
    """Replace a token: a new one is printed once (last line), the old one revoked with it."""
    options: Settings = ctx.obj
    db = options.database()
    token = rotate_token(db, options.clock, name, prefix)
    record_event(
        db,
        options.clock,
        actor="admin",
        action=f"user token rotate (user {name}) {prefix}",
        outcome="ok",
        reason=f"token revoked, replaced by {token[:8]}…",
        address="cli",
    )
    sys.stdout.write(f"token {prefix}… of {name} replaced; the new one is shown only once:\n")
    sys.stdout.write(token + "\n")


@app.command(name="export")
def export_command(
    ctx: typer.Context,
    agreement: Annotated[str, typer.Argument(help="organisation id")],
    evidence: Annotated[
        Path, typer.Option("--evidence", help="directory to write the pack into (new or empty)")
    ],
    cycle: CycleOption = None,
    as_json: JsonOption = False,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="include this signed checkpoint")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="the checkpoint's public key (PEM)")
    ] = None,
) -> None:
    """Write an agreement's evidence pack (check: `python3 DIR/verify_pack.py`)."""
    options = settings(ctx, cycle)
    manifest = export_evidence(
        options.database(),
        options.clock,
        agreement,
        evidence,
        options.cycle,
        checkpoint=checkpoint,
        public_key=public_key,
    )
    if as_json:
        print_json(manifest)
        return
    sys.stdout.write(
        f"{evidence}: {len(manifest['files']) + 2} files; chain of "
        f"{manifest['chain']['entries']} entries, head {manifest['chain']['head']}\n"
        f"check offline: python3 -I -S {evidence / 'verify_pack.py'}  "
        f"or  (cd {evidence} && sha256sum -c SHA256SUMS)\n"
    )
