"""Scenario files for ``simulate``: JSON Lines, one action per line, checked before anything runs.

Each line is ``{"at", "agreement", "event", "as", "data"?}``; ``"as": "own"`` means the
agreement's own role (``province:TH-50``, ``group:ID``, ``agency:ID``). Blank lines and lines
starting with ``#`` are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.rules.errors import BadInput, quoted
from workflow.rules.jsoninput import parse_json, utf8_position
from workflow.rules.roles import parse_role
from workflow.rules.timeutil import TimeFormatError, parse_instant

KEYS = {"at", "agreement", "event", "as", "data"}


@dataclass(frozen=True)
class Action:
    """One scripted action."""

    line: int
    at: int
    agreement: str
    event: str
    role: str  # a role string, or "own"
    data: dict[str, Any] | None


def parse_scenario(text: str, name: str = "<scenario>") -> list[Action]:
    """Parse every line; a malformed line raises ``BadInput`` naming ``FILE:LINE``."""
    actions: list[Action] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}:{number}"
        try:
            item = parse_json(line, "the line")
        except BadInput as exc:
            raise BadInput(f"{where}: {exc.message}") from None
        if not isinstance(item, dict):
            raise BadInput(f"{where}: each line must be a JSON object")
        if unknown := set(item) - KEYS:
            names = ", ".join(quoted(key) for key in sorted(unknown)[:5])
            raise BadInput(f"{where}: unknown keys {names} (keys: {', '.join(sorted(KEYS))})")
        missing = [key for key in ("at", "agreement", "event", "as") if key not in item]
        if missing:
            raise BadInput(f"{where}: missing {', '.join(missing)}")
        if not all(isinstance(item[key], str) for key in ("at", "agreement", "event", "as")):
            raise BadInput(f"{where}: at, agreement, event and as must be strings")
        try:
            at = parse_instant(item["at"])
        except TimeFormatError as exc:
            raise BadInput(f"{where}: {exc}") from exc
        if item["as"] != "own":
            try:
                parse_role(item["as"])
            except BadInput as exc:
                raise BadInput(f"{where}: {exc.message}") from exc
        data = item.get("data")
        if data is not None and not isinstance(data, dict):
            raise BadInput(f"{where}: data must be a JSON object")
        actions.append(Action(number, at, item["agreement"], item["event"], item["as"], data))
    return actions


def read_scenario(path: Path) -> list[Action]:
    """Read and parse a scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line, column = utf8_position(path.read_bytes(), exc.start)
        raise BadInput(f"{path}:{line}: not valid UTF-8 (column {column})") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the scenario ({exc.strerror})") from None
    return parse_scenario(text, str(path))
