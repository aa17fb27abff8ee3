"""Calendar feed commands: ``ical issue ORG``, ``ical revoke ORG`` and ``ical list``.

A feed URL holds its secret (calendar programs cannot sign in); the secret is printed once, by
``issue``, and only its SHA-256 is stored (:mod:`workflow.usecases.ical_feeds`).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from workflow.cli.app import CycleOption, JsonOption, app, print_json, settings
from workflow.store.security import record_event
from workflow.usecases.ical_feeds import feed_rows, feed_url, issue_feed, revoke_feeds

PUBLIC_URL_ENV = "RUBRONG_PUBLIC_URL"

ical_app = typer.Typer(
    help="Read-only calendar feeds per organisation: issue (prints the URL once), revoke, list."
)
app.add_typer(ical_app, name="ical")
OrgArgument = Annotated[str, typer.Argument(help="organisation id (TH-50, north-upper-1, …)")]


@ical_app.command(name="issue")
def ical_issue(
    ctx: typer.Context,
    org: OrgArgument,
    cycle: CycleOption = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="also revoke the organisation's earlier links")
    ] = False,
) -> None:
    """Issue a feed link for the organisation; its URL (under RUBRONG_PUBLIC_URL when set) is
    printed once, as the last line of stdout. Exit 2 for an organisation not in the cycle."""
    options = settings(ctx, cycle)
    db = options.database()
    issued = issue_feed(db, options.clock, org, options.cycle, replace=replace)
    record_event(
        db,
        options.clock,
        actor="admin",
        action=f"ical issue {issued.org_id} (cycle {issued.cycle_id})",
        outcome="ok",
        reason="feed link issued" + (", earlier links revoked" if replace else ""),
        address="cli",
    )
    sys.stdout.write(
        f"calendar feed of {issued.org_id} (cycle {issued.cycle_id}); "
        "the link is shown only this once:\n"
    )
    sys.stdout.write(feed_url(issued.path, os.environ.get(PUBLIC_URL_ENV)) + "\n")


@ical_app.command(name="revoke")
def ical_revoke(ctx: typer.Context, org: OrgArgument, cycle: CycleOption = None) -> None:
    """Revoke every feed link of the organisation (of every cycle, or of ``--cycle``): they
    answer 404 from the next request on."""
    options = settings(ctx, cycle)
    db = options.database()
    count = revoke_feeds(db, options.clock, org, options.cycle)
    record_event(
        db,
        options.clock,
        actor="admin",
        action=f"ical revoke {org}",
        outcome="ok",
        reason=f"{count} feed link(s) revoked",
        address="cli",
    )
    sys.stderr.write(f"revoked {count} feed link(s) of {org}\n")


@ical_app.command(name="list")
def ical_list(ctx: typer.Context, cycle: CycleOption = None, as_json: JsonOption = False) -> None:
    """Every feed link issued: organisation, cycle, created, revoked (never a secret)."""
    options = settings(ctx, cycle)
    with options.database().read() as conn:
        rows = feed_rows(conn, options.cycle)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = f"revoked {row['revoked']}" if row["revoked"] else "active"
        sys.stdout.write(
            f"{row['organisation']:<20} cycle {row['cycle']:<8} created {row['created']}  {state}\n"
        )
