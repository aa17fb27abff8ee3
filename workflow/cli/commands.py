"""The table of commands: each name, the module that defines it, and its one-line help.

The console entry point reads this table instead of importing every command module, so a
command loads only what it needs (``--help`` imports no database or mail library at all).
A test checks the table against the commands the modules really define.
"""

from __future__ import annotations

from typing import NamedTuple


class CommandEntry(NamedTuple):
    """Where a command lives and what ``rubrong --help`` says of it."""

    module: str
    summary: str


COMMANDS: dict[str, CommandEntry] = {
    "validate": CommandEntry(
        "workflow.cli.core",
        "Check a cycle file; print every problem as FILE:LINE: message (exit 2 if any).",
    ),
    "load": CommandEntry(
        "workflow.cli.core",
        "Validate and store a cycle; create one agreement per group and organisation.",
    ),
    "fire": CommandEntry("workflow.cli.core", "Apply one event to one agreement."),
    "diagram": CommandEntry(
        "workflow.cli.core", "Print the declared state machine as a mermaid stateDiagram-v2."
    ),
    "status": CommandEntry(
        "workflow.cli.reads",
        "Each agreement's state, next due deliverable and overdue milestones.",
    ),
    "milestones": CommandEntry(
        "workflow.cli.reads",
        "Every agreement × milestone that concerns it, with status and late days.",
    ),
    "history": CommandEntry(
        "workflow.cli.reads",
        "History entries in seq order (optionally one agreement's, optionally as of a time).",
    ),
    "score": CommandEntry(
        "workflow.cli.reads", "An agreement's score, every step shown so anyone can recompute it."
    ),
    "report": CommandEntry(
        "workflow.cli.reads", "Every agreement ranked by final score (csv, json or xlsx)."
    ),
    "kpis": CommandEntry(
        "workflow.cli.reads",
        "Every KPI set the agreement has had (proposed, negotiated, changed), oldest first.",
    ),
    "verify": CommandEntry(
        "workflow.cli.verify",
        "Recompute the history hash chain; exit 6 naming the first bad entry.",
    ),
    "keygen": CommandEntry(
        "workflow.cli.audit", "Write an Ed25519 key pair for signed checkpoints."
    ),
    "checkpoint": CommandEntry(
        "workflow.cli.audit", "Sign the current head of the history chain (a checkpoint JSON)."
    ),
    "tick": CommandEntry(
        "workflow.cli.mail",
        "Process every timer instant ≤ TIME in time order, then send due mail.",
    ),
    "outbox": CommandEntry("workflow.cli.mail", "The notification outbox: list, resend."),
    "run": CommandEntry(
        "workflow.cli.run",
        "The service: wakes at every timer instant, sends mail, stops cleanly on SIGTERM.",
    ),
    "simulate": CommandEntry(
        "workflow.cli.simulate",
        "Simulate the whole fiscal year on a virtual clock and print the summary.",
    ),
    "user": CommandEntry(
        "workflow.cli.users",
        "Accounts: add (prints an API token once), list, passwd, token, revoke.",
    ),
    "export": CommandEntry("workflow.cli.users", "Write an agreement's evidence pack."),
    "db": CommandEntry("workflow.cli.db", "Database schema: upgrade."),
    "ical": CommandEntry(
        "workflow.cli.ical",
        "Read-only calendar feeds per organisation: issue (prints the URL once), revoke, list.",
    ),
}

# Global options that take a value (the command name is the first other word).
VALUE_OPTIONS = ("--db", "--smtp", "--cycle")


def command_name(argv: list[str]) -> str | None:
    """The command word of ``argv`` (after the global options), if any."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            return word
    return None
