"""Read commands (every one takes --json): status, milestones, history, score, report.

``verify`` lives with the other audit commands in ``workflow/cli/audit.py``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workflow.cli.app import (
    CycleOption,
    JsonOption,
    Settings,
    app,
    parse_time_option,
    print_json,
    settings,
)
from workflow.rules.errors import BadInput

if TYPE_CHECKING:
    from workflow.store.read_views import Reader

# Each command imports what it reads with (scoring, reports, rich tables) in its own body: one
# command's process should not pay for the others' libraries.


@contextmanager
def reading(options: Settings) -> Iterator[Reader]:
    """A ``Reader`` on the database driver itself when it can (``workflow.store.dbapi``: no
    SQLAlchemy or schema classes to import, the bulk of a short command's time), else through
    ``Database`` (a database to create, an older schema, a URL only SQLAlchemy knows), which
    then behaves, errors and exit codes included, as it always has."""
    from workflow.store.dbapi import driver_reader

    with driver_reader(options.db_url) as reader:
        if reader is not None:
            yield reader
            return
    from workflow.store.database import ConnectionReader

    with options.database().read() as conn:
        yield ConnectionReader(conn)


def _read(
    options: Settings, view: Callable[[Reader], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """``view``'s rows, read as ``reading`` reads."""
    with reading(options) as reader:
        return view(reader)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console.print(table)


@app.command()
def status(
    ctx: typer.Context,
    agreements: Annotated[list[str] | None, typer.Argument(help="organisation ids")] = None,
    cycle: CycleOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each agreement's state, next due deliverable and overdue milestones."""
    from workflow.store.read_views import status_rows

    options = settings(ctx, cycle)
    rows = _read(options, lambda reader: status_rows(reader, options.cycle, agreements or None))
    if as_json:
        print_json(rows)
        return
    _table(
        "status",
        ["agreement", "kind", "name", "state", "next due", "overdue (own)", "overdue (OPDC)"],
        [
            [
                r["agreement"],
                r["kind"],
                r["name_th"],
                r["state"],
                f"{r['next_due']['milestone']} {r['next_due']['due']}" if r["next_due"] else "",
                ", ".join(r["overdue_own"]),
                ", ".join(r["overdue_opdc"]),
            ]
            for r in rows
        ],
    )


@app.command()
def milestones(
    ctx: typer.Context,
    agreements: Annotated[list[str] | None, typer.Argument(help="organisation ids")] = None,
    cycle: CycleOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every agreement × milestone that concerns it, with status and late days."""
    from workflow.store.read_views import milestone_rows

    options = settings(ctx, cycle)
    rows = _read(options, lambda reader: milestone_rows(reader, options.cycle, agreements or None))
    if as_json:
        print_json(rows)
        return
    _table(
        "milestones",
        ["agreement", "milestone", "kind", "actor", "due", "status", "met at", "late days"],
        [
            [
                r["agreement"],
                r["milestone"],
                r["kind"],
                r["actor"],
                r["due"],
                r["status"],
                r["met_at"],
                r["late_business_days"],
            ]
            for r in rows
        ],
    )


@app.command()
def history(
    ctx: typer.Context,
    agreement: Annotated[str | None, typer.Argument(help="organisation id (default: all)")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="what was recorded by this time")
    ] = None,
    cycle: CycleOption = None,
    as_json: JsonOption = False,
) -> None:
    """History entries in seq order (optionally one agreement's, optionally as of a time).

    Entries are written as they are read (a JSON array one entry per line with ``--json``),
    so a history of millions of entries prints in constant memory.
    """
    from workflow.store.read_history import history_entries

    options = settings(ctx, cycle)
    instant = parse_time_option(as_of, "--as-of")
    out = sys.stdout
    with reading(options) as reader:
        rows = history_entries(reader, options.cycle, agreement, instant)
        if as_json:
            out.write("[")
            for index, row in enumerate(rows):
                out.write(",\n" if index else "\n")
                out.write(json.dumps(row, ensure_ascii=False))
            out.write("\n]\n")
            return
        for row in rows:
            change = row["to"] if row["from"] == row["to"] else f"{row['from']} → {row['to']}"
            out.write(
                f"{row['seq']:>7}  {row['at']}  {row['agreement'] or '-':<15} {row['kind']:<6} "
                f"{row['event']:<20} {change or '-':<40} {row['actor']}  "
                f"(recorded {row['recorded_at']})\n"
            )


@app.command()
def score(
    ctx: typer.Context,
    agreement: Annotated[str, typer.Argument(help="organisation id")],
    cycle: CycleOption = None,
    as_json: JsonOption = False,
) -> None:
    """An agreement's score, every step shown so anyone can recompute it."""
    from workflow.store.repository import get_agreement, get_cycle
    from workflow.usecases.score import agreement_score

    options = settings(ctx, cycle)
    with options.database().read() as conn:
        stored = get_cycle(conn, options.cycle)
        card = agreement_score(conn, stored, get_agreement(conn, stored.id, agreement))
    if as_json:
        print_json(card)
        return
    for step in card.get("steps", []):
        sys.stdout.write(f"{step}\n")
    sys.stdout.write(
        f"{agreement}: composite {card['composite']} − penalty {card['penalty']} = final "
        f"{card['final']} (tier {card['tier']})\n"
    )


@app.command()
def report(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="csv | json | xlsx")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file (xlsx needs one)")
    ] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="also write an SVG chart of the scores")
    ] = None,
    cycle: CycleOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every agreement ranked by final score (csv, json or xlsx)."""
    from workflow.rules.ranking import score_chart_svg, to_csv, to_json, to_xlsx
    from workflow.usecases.report import report_rows

    options = settings(ctx, cycle)
    if as_json:
        fmt = "json"
    if fmt not in ("csv", "json", "xlsx"):
        raise BadInput(f"unknown report format {fmt!r} (csv, json, xlsx)")
    with options.database().read() as conn:
        rows = report_rows(conn, options.cycle)
    if chart is not None:
        late = {str(r["agreement"]): int(r["late_business_days"] or 0) for r in rows}
        chart.write_text(score_chart_svg(rows, late), encoding="utf-8")
        sys.stderr.write(f"wrote {chart}\n")
    if fmt == "xlsx":
        target = output or Path("report.xlsx")
        to_xlsx(rows, target)
        sys.stderr.write(f"wrote {target}\n")
        return
    body = to_csv(rows) if fmt == "csv" else to_json(rows)
    if output is not None:
        output.write_text(body, encoding="utf-8")
    else:
        sys.stdout.write(body if body.endswith("\n") else body + "\n")


@app.command()
def kpis(
    ctx: typer.Context,
    agreement: Annotated[str, typer.Argument(help="organisation id")],
    cycle: CycleOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every KPI set the agreement has had (proposed, negotiated, changed), oldest first."""
    from workflow.store.views import kpi_version_rows

    options = settings(ctx, cycle)
    with options.database().read() as conn:
        rows = kpi_version_rows(conn, options.cycle, agreement)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        marker = " (current)" if row["current"] else ""
        sys.stdout.write(
            f"version {row['version']}{marker}: {row['source_event']} at {row['at']}\n"
        )
        for kpi in row["kpis"]:
            sys.stdout.write(
                f"  {kpi['id']}  dim {kpi['dimension']}  weight {kpi['weight']}  "
                f"{kpi['direction']}  levels {kpi['levels']}  {kpi['name_th']}\n"
            )
