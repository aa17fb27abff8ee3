"""The ``rubrong`` command line: the operator's console (CONTRACT.md)."""

from __future__ import annotations

from workflow.cli import core, reads, run, service, simulate  # noqa: F401  (registers the commands)
from workflow.cli.app import app, main

__all__ = ["app", "main"]
