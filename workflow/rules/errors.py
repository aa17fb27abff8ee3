"""One exception root; each subclass carries the CLI exit code of CONTRACT.md."""

from __future__ import annotations

import json


class RubrongError(Exception):
    """Base of every error a user can cause or meet. ``exit_code`` is the CLI's exit status."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EnvironmentProblem(RubrongError):
    """The database or another resource is unreachable (exit 1)."""

    exit_code = 1


class BadInput(RubrongError):
    """Bad usage, bad data, unknown agreement or event, invalid config (exit 2)."""

    exit_code = 2


class NotAllowed(RubrongError):
    """The event is not allowed now: state or guard (exit 3)."""

    exit_code = 3


class NotAuthorised(RubrongError):
    """The role may not do this (exit 4)."""

    exit_code = 4


class ConcurrentChange(RubrongError):
    """Someone else changed the agreement first; nothing was written (exit 5)."""

    exit_code = 5


class IntegrityFailure(RubrongError):
    """The history chain does not verify (exit 6)."""

    exit_code = 6


QUOTE_LIMIT = 40


def quoted(value: object, *, as_json: bool = False, limit: int = QUOTE_LIMIT) -> str:
    """A user's value for an error line, cut to ``limit`` characters of the value plus ``…``.

    Strings appear as Python writes them (``'TH-99'``), or as JSON (``"TH-99"``) with
    ``as_json``; other values as JSON text (``true``, ``null``, ``[1, 2]``). Line breaks and
    control characters appear escaped, and a 1 MB value never fills the terminal.
    """
    if isinstance(value, str) and not as_json:
        return repr(value[:limit]) + ("…" if len(value) > limit else "")
    if isinstance(value, str):
        return _json_text(value[:limit]) + ("…" if len(value) > limit else "")
    text = _json_text(value)
    return text[:limit] + "…" if len(text) > limit else text


def _json_text(value: object) -> str:
    """JSON text of a value (its ``repr`` when it is not JSON), no more than needed."""
    try:
        text = json.dumps(value, ensure_ascii=False)[: QUOTE_LIMIT * 4]
    except (TypeError, ValueError, RecursionError):
        text = repr(value)[: QUOTE_LIMIT * 4]
    # JSON leaves U+2028, U+0085 and the like raw; they would break the one line.
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
