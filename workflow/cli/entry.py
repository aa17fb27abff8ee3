"""The console entry point: load only the command asked for, then run it.

Importing every command module costs a second before anything happens (the database, mail,
web and crypto libraries); ``COMMANDS`` says which module defines each command, so
``rubrong status`` imports the read commands only and ``rubrong --help`` none at all (it lists
the commands from the table's one-line summaries).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from workflow.cli.commands import COMMANDS, command_name

# Stand-ins registered only to print help or refuse an unknown command.
_STAND_INS: list[Any] = []


def _registered(app: Any) -> set[str]:
    names = {
        info.name or info.callback.__name__.replace("_", "-") for info in app.registered_commands
    }
    return names | {group.name for group in app.registered_groups}


def _not_loaded() -> None:  # pragma: no cover - never run: the real command is loaded first
    """(not loaded)"""
    raise RuntimeError("a command stand-in ran")


def load_commands(name: str | None) -> None:
    """Import the module of command ``name``; for no or an unknown command, register
    stand-ins carrying each command's summary so that help and click's refusal list them."""
    from workflow.cli.app import app

    for info in _STAND_INS:
        app.registered_commands.remove(info)
    _STAND_INS.clear()
    entry = COMMANDS.get(name) if name is not None else None
    if entry is not None:
        importlib.import_module(entry.module)
        return
    present = _registered(app)
    for command, found in COMMANDS.items():
        if command in present:
            continue
        app.command(name=command, help=found.summary, add_help_option=False)(_not_loaded)
        _STAND_INS.append(app.registered_commands[-1])


def main(argv: list[str] | None = None) -> None:
    """``rubrong``: the operator's console (CONTRACT.md)."""
    args = list(sys.argv[1:] if argv is None else argv)
    load_commands(command_name(args))
    from workflow.cli.app import run_command

    run_command(args)
