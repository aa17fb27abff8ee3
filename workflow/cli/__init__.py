"""The ``rubrong`` command line: the operator's console (CONTRACT.md)."""

from __future__ import annotations

from workflow.cli import (  # noqa: F401  (importing registers the commands)
    audit,
    core,
    db,
    reads,
    run,
    service,
    simulate,
    users,
)
from workflow.cli.app import app, main

__all__ = ["app", "main"]
