"""The console entry point loads only the command asked for (``workflow/cli/commands.py``)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli
from workflow.cli.app import app
from workflow.cli.commands import COMMANDS, command_name
from workflow.cli.entry import load_commands


def _defined() -> dict[str, str]:
    """Every command the modules define → the module defining it (all modules imported)."""
    for module in {entry.module for entry in COMMANDS.values()}:
        importlib.import_module(module)
    load_commands("status")  # drops any help stand-ins registered by an earlier test
    found = {}
    for info in app.registered_commands:
        assert info.callback is not None
        found[info.name or info.callback.__name__.replace("_", "-")] = info.callback.__module__
    for group in app.registered_groups:
        assert group.name is not None and group.typer_instance is not None
        first = group.typer_instance.registered_commands[0].callback
        assert first is not None
        found[group.name] = first.__module__
    return found


def test_the_table_names_every_command_and_its_module() -> None:
    defined = _defined()
    assert set(defined) == set(COMMANDS)
    assert {name: COMMANDS[name].module for name in defined} == defined


def test_the_command_word_comes_after_the_global_options() -> None:
    assert command_name(["--db", "sqlite:///x.db", "--smtp", "smtp://h:1", "status"]) == "status"
    assert command_name(["--cycle", "2554", "fire", "TH-50", "sign"]) == "fire"
    assert command_name(["--db=sqlite:///x.db", "history"]) == "history"
    assert command_name(["--help"]) is None
    assert command_name([]) is None


def _modules_after(*argv: str) -> set[str]:
    """The modules a fresh process has imported after running ``rubrong ARGV``."""
    script = (
        "import sys, contextlib, io\n"
        "from workflow.cli import main\n"
        "try:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        f"        main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return set(done.stdout.split())


def test_help_imports_no_database_mail_or_web_library() -> None:
    loaded = _modules_after("--help")
    heavy = {"sqlalchemy", "sqlmodel", "jinja2", "fastapi", "aiosmtplib", "holidays", "rich"}
    assert not heavy & loaded
    assert not {m for m in loaded if m.startswith("workflow.cli.") and m != "workflow.cli.app"} - {
        "workflow.cli.commands",
        "workflow.cli.entry",
    }


def test_a_read_command_does_not_load_mail_web_or_calendars(tmp_path: Path) -> None:
    loaded = _modules_after("--db", f"sqlite:///{tmp_path}/x.db", "status", "--json")
    assert "sqlalchemy" in loaded  # a new database: created through Database (SQLAlchemy)
    for heavy in ("jinja2", "fastapi", "aiosmtplib", "openpyxl", "pythainlp", "argon2", "rich"):
        assert heavy not in loaded, heavy


def test_verify_reads_on_the_bare_driver_without_the_signature_library(loaded: Cli) -> None:
    """``verify`` (no ``--checkpoint``) recomputes the chain on the bare driver: no SQLAlchemy,
    no schema classes, no cryptography."""
    loaded_modules = _modules_after("--db", loaded.db_url, "verify", "--json")
    assert "workflow.store.chain" in loaded_modules  # it did verify
    heavy = {"sqlalchemy", "sqlmodel", "workflow.store.tables", "cryptography", "transitions"}
    assert not heavy & loaded_modules


@pytest.mark.parametrize("command", ["status", "milestones", "history"])
def test_the_reads_a_user_waits_on_use_the_bare_driver(loaded: Cli, command: str) -> None:
    """On a loaded database (SQLite or PostgreSQL) the reads a user waits on import no
    SQLAlchemy, schema classes, state machine or templates (workflow/store/dbapi.py)."""
    loaded_modules = _modules_after("--db", loaded.db_url, command, "TH-50", "--json")
    assert "workflow.store.read_views" in loaded_modules  # it did read
    heavy = {"sqlalchemy", "sqlmodel", "workflow.store.tables", "transitions", "jinja2", "alembic"}
    assert not heavy & loaded_modules
    assert not {m for m in loaded_modules if m.startswith("workflow.")} - {
        "workflow",
        "workflow.cli",
        "workflow.cli.app",
        "workflow.cli.commands",
        "workflow.cli.entry",
        "workflow.cli.reads",
        "workflow.rules",  # the layer packages: their __init__ imports nothing
        "workflow.store",
        "workflow.rules.clock",
        "workflow.store.dbapi",
        "workflow.rules.defaults",
        "workflow.rules.errors",
        "workflow.store.read_views",
        "workflow.store.read_history",
        "workflow.rules.records",
        "workflow.rules.timeutil",
    }


def test_help_lists_every_command_and_an_unknown_one_is_refused() -> None:
    listing = subprocess.run(
        [sys.executable, "-c", "from workflow.cli import main; main(['--help'])"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0
    for name in COMMANDS:
        assert name in listing.stdout, name
    unknown = subprocess.run(
        [sys.executable, "-c", "from workflow.cli import main; main(['frobnicate'])"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 2
    assert "frobnicate" in unknown.stderr and "Traceback" not in unknown.stderr
