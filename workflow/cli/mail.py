"""Service commands: tick and outbox (list, resend)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from notifications.mailers import mailer_from_url
from workflow.cli.app import JsonOption, Settings, app, parse_time_option, print_json, settings
from workflow.rules.errors import BadInput
from workflow.store.views import outbox_rows
from workflow.usecases.dispatch import dispatch, resend
from workflow.usecases.tick import tick

DEFAULT_MAILDIR = Path("mail")


def make_mailer(options: Settings, maildir: Path | None = None) -> object:
    """The configured mailer: SMTP when a URL is set, else the Maildir ``./mail/``."""
    try:
        return mailer_from_url(options.smtp_url, maildir=maildir or DEFAULT_MAILDIR)
    except ValueError as exc:
        raise BadInput(f"--smtp: {exc}") from exc


@app.command(name="tick")
def tick_command(
    ctx: typer.Context,
    now: Annotated[str, typer.Option("--now", help="process every timer instant up to TIME")],
    no_send: Annotated[bool, typer.Option("--no-send", help="enqueue only; send nothing")] = False,
    as_json: JsonOption = False,
) -> None:
    """Process every timer instant ≤ TIME in time order, then send due mail."""
    options = settings(ctx)
    instant = parse_time_option(now, "--now")
    assert instant is not None
    db = options.database()
    report = tick(db, options.clock, instant)
    summary: dict[str, object] = {
        "instants": report.instants,
        "enqueued": report.enqueued,
        "missed": report.missed,
        "closed": report.closed,
    }
    if not no_send:
        mailer = make_mailer(options)
        sent = dispatch(db, mailer, instant)  # type: ignore[arg-type]
        summary.update(sent=sent.sent, retrying=sent.retrying, failed=len(sent.failed))
        summary.update(released=sent.released)  # leases freed first (a killed dispatcher's)
        if sent.failed:
            sys.stderr.write(
                f"rubrong: warning: {len(sent.failed)} notification(s) failed: "
                f"{', '.join(sent.failed[:5])}\n"
            )
    if as_json:
        print_json(summary)
    else:
        sys.stdout.write(" ".join(f"{key}={value}" for key, value in summary.items()) + "\n")


outbox_app = typer.Typer(help="The notification outbox: list, resend.", invoke_without_command=True)
app.add_typer(outbox_app, name="outbox")


@outbox_app.callback()
def outbox_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every notification (without a subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    options: Settings = ctx.obj
    with options.database().read() as conn:
        rows = outbox_rows(conn)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        sys.stdout.write(
            f"{row['send_at']}  {row['status']:<8} {row['kind']:<10} {row['to']:<40} {row['key']}\n"
        )


@outbox_app.command(name="resend")
def outbox_resend(
    ctx: typer.Context, key: Annotated[str, typer.Argument(help="outbox key")]
) -> None:
    """Queue a skipped, failed or sent notification again (same Message-ID)."""
    options: Settings = ctx.obj
    resend(options.database(), key)
    sys.stderr.write(f"queued {key} again for the next tick\n")
