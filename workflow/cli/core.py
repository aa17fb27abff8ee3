"""Administrator and operator commands: validate, load, fire, diagram."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from states.machine import mermaid
from workflow.cli.app import CycleOption, JsonOption, app, parse_time_option, print_json, settings
from workflow.config.validate import ConfigInvalid, read_cycle_file
from workflow.rules.errors import BadInput
from workflow.rules.jsoninput import parse_json_object
from workflow.store.documents import default_store, max_document_bytes
from workflow.store.views import agreement_status
from workflow.usecases.esar import with_document
from workflow.usecases.fire import FireRequest, fire
from workflow.usecases.load import load_cycle, load_document


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="cycle file (TOML)")]) -> None:
    """Check a cycle file; print every problem as FILE:LINE: message (exit 2 if any)."""
    try:
        cycle = read_cycle_file(config)
    except ConfigInvalid as exc:
        for problem in exc.problems:
            sys.stdout.write(problem + "\n")
        sys.stderr.write(f"rubrong: {config}: {len(exc.problems)} problem(s)\n")
        raise typer.Exit(2) from None
    sys.stderr.write(
        f"{config}: valid (cycle {cycle.id}, {len(cycle.milestones)} milestones, "
        f"{len(cycle.parties())} agreements)\n"
    )


@app.command()
def load(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="cycle file (TOML)")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would change, and its effects")
    ] = False,
    apply_changes: Annotated[
        bool, typer.Option("--apply-changes", help="apply a changed file")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate and store a cycle; create one agreement per group and organisation.

    ``--dry-run`` of a changed file also lists its effects: per agreement × milestone the due
    date, status and late days that change, and the letters withdrawn and added, as
    ``--apply-changes`` and then the next tick (up to the time already processed) make them.
    """
    options = settings(ctx)
    try:
        cycle = read_cycle_file(config)
    except ConfigInvalid as exc:
        for problem in exc.problems:
            sys.stdout.write(problem + "\n")
        raise BadInput(f"{config}: {len(exc.problems)} problem(s); nothing loaded") from None
    source = config.read_text(encoding="utf-8")
    db = options.database()
    outcome = load_cycle(
        db, options.clock, cycle, source, dry_run=dry_run, apply_changes=apply_changes
    )
    if as_json:
        print_json(load_document(outcome))
    else:
        for change in outcome.changes:
            sys.stdout.write(change.line() + "\n")
        if outcome.effects is not None:
            sys.stdout.write("".join(line + "\n" for line in outcome.effects.lines()))
    messages = {
        "created": f"loaded cycle {cycle.id}: {outcome.agreements} agreements",
        "would_create": f"would load cycle {cycle.id}: {outcome.agreements} agreements (dry run)",
        "unchanged": f"cycle {cycle.id} is already loaded with this content; nothing changed",
        "would_change": f"cycle {cycle.id}: {len(outcome.changes)} change(s) (dry run)",
        "applied": f"cycle {cycle.id}: applied {len(outcome.changes)} change(s)",
    }
    if outcome.action == "refused":
        raise BadInput(
            f"cycle {cycle.id} is loaded with different content ({len(outcome.changes)} "
            "change(s) above); nothing changed: use --apply-changes to apply them"
        )
    sys.stderr.write(messages[outcome.action] + "\n")


def parse_data(value: str | None) -> dict[str, Any] | None:
    """``--data JSON`` or ``--data @FILE`` as an object; exit 2 when malformed."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"--data {value}: cannot read the file ({exc})") from exc
    return parse_json_object(text, "--data")


@app.command(name="fire")
def fire_command(
    ctx: typer.Context,
    agreement: Annotated[str, typer.Argument(help="organisation id (TH-50, north-upper-1, …)")],
    event: Annotated[str, typer.Argument(help="event name")],
    role: Annotated[str, typer.Option("--as", help="role: admin, province:TH-50, …")],
    at: Annotated[str | None, typer.Option("--at", help="effective time (ISO 8601)")] = None,
    data: Annotated[str | None, typer.Option("--data", help="JSON object or @FILE")] = None,
    document: Annotated[
        str | None,
        typer.Option("--document", help="a PDF, DOCX or XLSX to submit (= data.document.path)"),
    ] = None,
    cycle: CycleOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply one event to one agreement."""
    options = settings(ctx, cycle)
    effective = parse_time_option(at, "--at")
    payload = parse_data(data)
    # A document (--document FILE, or data.document.path) is read, checked and stored at the
    # engine's data step (workflow.usecases.esar); here it is only marked as pending.
    store = default_store(options.db_url)
    payload = with_document(
        event, payload, store, max_document_bytes(), path=document, local_files=True
    )
    db = options.database()
    request = FireRequest(agreement, event, role, effective, payload, options.cycle)
    result = fire(db, options.clock, request)
    with db.read() as conn:
        row = agreement_status(conn, result)
    if as_json:
        print_json(row)
    else:
        sys.stdout.write(f"{result.org_id}: {event} → {result.state}\n")


@app.command()
def diagram(
    fmt: Annotated[str, typer.Option("--format", help="diagram format")] = "mermaid",
) -> None:
    """Print the declared state machine as a mermaid stateDiagram-v2."""
    if fmt != "mermaid":
        raise BadInput(f"unknown diagram format {fmt!r} (formats: mermaid)")
    sys.stdout.write(mermaid())
