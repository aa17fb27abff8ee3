"""The typer application, its global options, output helpers and the error boundary.

No traceback ever reaches the user: every ``RubrongError`` becomes one line on stderr and its
exit code; usage errors exit 2; anything unexpected is reported in one line with exit 1.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workflow.rules.clock import Clock, SystemClock
from workflow.rules.defaults import DEFAULT_URL
from workflow.rules.errors import BadInput, RubrongError

if TYPE_CHECKING:  # imported when a command opens the database, not to print --help
    from workflow.store.database import Database

_OPEN: list[Database] = []  # disposed when the command ends

app = typer.Typer(
    name="rubrong",
    help="rubrong: the workflow engine for provincial performance agreements (คำรับรองฯ).",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    # Plain help text: rich's help formatting costs ~0.1 s of imports on every --help.
    rich_markup_mode=None,
)


@dataclass
class Settings:
    """Global options, shared by every command."""

    db_url: str
    smtp_url: str | None
    cycle: str | None
    clock: Clock

    def database(self, create: bool = True) -> Database:
        """The database (one per command run), with its schema created when missing."""
        from workflow.store.database import Database

        db = Database(self.db_url)
        _OPEN.append(db)
        if create:
            db.create_schema()
        return db


def _print_version(value: bool) -> None:
    """``--version``: print ``rubrong <version>`` (the installed distribution's) and exit 0."""
    if not value:
        return
    from importlib.metadata import version  # only when asked: keeps start-up cheap

    sys.stdout.write(f"rubrong {version('rubrong')}\n")
    raise typer.Exit()


@app.callback()
def global_options(
    ctx: typer.Context,
    db: Annotated[
        str | None, typer.Option("--db", help="SQLAlchemy URL (env RUBRONG_DB)", show_default=False)
    ] = None,
    smtp: Annotated[
        str | None,
        typer.Option("--smtp", help="SMTP URL (env RUBRONG_SMTP_URL); unset: Maildir ./mail/"),
    ] = None,
    cycle: Annotated[
        str | None, typer.Option("--cycle", help="cycle id (default: latest loaded)")
    ] = None,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Global options come before the command."""
    ctx.obj = Settings(
        db_url=db or os.environ.get("RUBRONG_DB") or DEFAULT_URL,
        smtp_url=smtp or os.environ.get("RUBRONG_SMTP_URL") or None,
        cycle=cycle,
        clock=SystemClock(),
    )


def settings(ctx: typer.Context, cycle: str | None = None) -> Settings:
    """The global settings, with a command-level ``--cycle`` taking precedence."""
    obj: Settings = ctx.obj
    if cycle is not None:
        obj.cycle = cycle
    return obj


CycleOption = Annotated[
    str | None, typer.Option("--cycle", help="cycle id (default: latest loaded)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON document")]


def print_json(value: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def parse_time_option(value: str | None, option: str) -> int | None:
    """An ISO 8601 option value as an instant; exit 2 when malformed."""
    if value is None:
        return None
    from workflow.rules.timeutil import TimeFormatError, parse_instant

    try:
        return parse_instant(value)
    except TimeFormatError as exc:
        raise BadInput(f"{option}: {exc}") from exc


def fail(message: str, code: int) -> None:
    """One line on stderr."""
    sys.stderr.write(f"rubrong: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def _classes(name: str) -> tuple[type[Any], ...]:
    """The exception class ``name`` of click and of typer's bundled click, where they exist."""
    found: list[type[Any]] = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        if cls not in found:
            found.append(cls)
    return tuple(found)


# typer bundles its own copy of click; usage errors may come from either.
_EXITS = _classes("Exit")
_ABORTS = _classes("Abort")
_USAGE_ERRORS = _classes("UsageError")
_CLICK_ERRORS = _classes("ClickException")


def run_command(argv: list[str] | None = None) -> None:
    """Run the app (the commands registered so far) behind the error boundary."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="rubrong", standalone_mode=False)
    except RubrongError as exc:
        fail(exc.message, exc.exit_code)
    except _EXITS as exc:
        raise SystemExit(exc.exit_code) from None
    except _ABORTS:
        fail("aborted", 1)
    except _USAGE_ERRORS as exc:
        fail(exc.format_message(), 2)
    except _CLICK_ERRORS as exc:
        fail(exc.format_message(), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        raise SystemExit(0) from None
    except Exception as exc:  # the last line of defence: never a traceback
        fail(f"internal error: {type(exc).__name__}: {exc}", 1)
    finally:
        while _OPEN:
            _OPEN.pop().dispose()
    # Without standalone mode click *returns* the code of a typer.Exit instead of raising it.
    if isinstance(code, int) and code != 0:
        raise SystemExit(code)
