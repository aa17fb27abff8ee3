"""``simulate``: the whole year on a virtual clock, in a throw-away database unless --keep-db."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from notifications.mailers import Mailer, mailer_from_url
from notifications.sink import MaildirSink
from workflow.cli.app import JsonOption, app, print_json, settings
from workflow.cli.summary import print_summary
from workflow.config.model import Cycle
from workflow.config.validate import ConfigInvalid, parse_cycle, read_cycle_file
from workflow.resources import bundled_cycle
from workflow.rules.clock import SystemClock
from workflow.rules.errors import BadInput
from workflow.rules.scenario import Action, read_scenario
from workflow.store.database import Database
from workflow.store.repository import CYCLES, latest_cycle_id
from workflow.store.views import milestone_rows, status_rows
from workflow.usecases.load import load_cycle
from workflow.usecases.report import report_rows
from workflow.usecases.simulate import SimulationResult, simulate

BUNDLED_CYCLE = bundled_cycle()


def _cycle_source(config: Path | None, db_url: str) -> tuple[Cycle, str]:
    """CONFIG, else the latest cycle loaded in --db, else the bundled cycle_2554.toml."""
    try:
        if config is not None:
            return read_cycle_file(config), config.read_text(encoding="utf-8")
        db = Database(db_url)
        db.create_schema()
        with db.read() as conn:
            latest = latest_cycle_id(conn)
            if latest is not None:
                source = conn.execute(CYCLES.select().where(CYCLES.c.id == latest)).first()
                assert source is not None
                return parse_cycle(source.source, f"<cycle {latest}>"), str(source.source)
        return read_cycle_file(BUNDLED_CYCLE), BUNDLED_CYCLE.read_text(encoding="utf-8")
    except ConfigInvalid as exc:
        for problem in exc.problems:
            sys.stdout.write(problem + "\n")
        raise BadInput(
            f"{len(exc.problems)} problem(s) in the cycle file; nothing simulated"
        ) from None


@app.command(name="simulate")
def simulate_command(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Argument(help="cycle file (default: latest loaded, else bundled)")
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="JSON Lines of actions")
    ] = None,
    keep_db: Annotated[
        str | None, typer.Option("--keep-db", help="simulate in this database and keep it")
    ] = None,
    no_send: Annotated[bool, typer.Option("--no-send", help="enqueue mail, send nothing")] = False,
    maildir: Annotated[
        Path, typer.Option("--maildir", help="Maildir of the embedded SMTP sink")
    ] = Path("mail"),
    as_json: JsonOption = False,
) -> None:
    """Simulate the whole fiscal year on a virtual clock and print the summary."""
    options = settings(ctx)
    actions: list[Action] = read_scenario(scenario) if scenario is not None else []
    cycle, source = _cycle_source(config, options.db_url)
    scratch = None
    if keep_db is None:
        scratch = tempfile.TemporaryDirectory(prefix="rubrong-sim-")
        url = f"sqlite:///{Path(scratch.name) / 'simulation.db'}"
    else:
        url = keep_db
    db = Database(url)
    db.create_schema()
    load_cycle(db, SystemClock(), cycle, source)
    console = Console(stderr=as_json, highlight=False)
    try:
        if no_send:
            result = _run(db, cycle.id, actions, None, console, as_json)
        elif options.smtp_url:
            result = _run(
                db, cycle.id, actions, _mailer(options.smtp_url, maildir), console, as_json
            )
        else:
            with MaildirSink(maildir) as sink:
                result = _run(db, cycle.id, actions, _mailer(sink.url, maildir), console, as_json)
        if as_json:
            print_json(result.as_json())
            return
        with db.read() as conn:
            statuses = status_rows(conn, cycle.id, None)
            milestones = milestone_rows(conn, cycle.id, None)
            ranking = report_rows(conn, cycle.id)
        for refusal in result.refusals[:10]:  # before the summary, which ends with the ranking
            sys.stderr.write(f"refused: {refusal}\n")
        sys.stderr.flush()
        wide = Console(highlight=False, width=max(Console().width, 160))
        print_summary(wide, statuses, milestones, ranking, result.as_json())
    finally:
        db.dispose()
        if scratch is not None:
            scratch.cleanup()


def _mailer(url: str, maildir: Path) -> Mailer:
    try:
        return mailer_from_url(url, maildir=maildir, connections=8)
    except ValueError as exc:
        raise BadInput(f"--smtp: {exc}") from exc


def _run(
    db: Database,
    cycle_id: str,
    actions: list[Action],
    mailer: Mailer | None,
    console: Console,
    quiet: bool,
) -> SimulationResult:
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("year", total=1)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return simulate(db, cycle_id, actions, mailer, progress)
