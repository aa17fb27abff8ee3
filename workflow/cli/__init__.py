"""The ``rubrong`` command line: the operator's console (CONTRACT.md).

Commands are loaded on demand (``workflow/cli/commands.py`` is the table); ``main`` is the
console entry point.
"""

from __future__ import annotations

from workflow.cli.entry import main

__all__ = ["main"]
