"""The one reader for JSON that users supply: ``fire --data``, scenario lines, API bodies.

``json.loads`` alone lets through what the rest of the engine cannot keep: nesting deep enough
to exhaust the interpreter's stack (``[[[[…`` a thousand times), ``NaN`` and ``Infinity``, a
number such as ``50.000000000000000000001`` that silently becomes ``50.0``, ``1e400`` that
becomes ``inf``, and escapes of lone surrogates that cannot be stored as UTF-8. This reader
refuses each of them with one clear :class:`~workflow.rules.errors.BadInput` line:

* the nesting depth is measured *without recursion* before parsing (at most :data:`MAX_DEPTH`);
* every fractional number is read as a ``Decimal`` from its text and kept as a ``float`` only
  when that float is exactly the same number (so ``Decimal(str(x))`` later gives back the text's
  value, and the stored JSON echoes it); anything else is refused;
* integers stay Python ``int`` (exact) up to :data:`MAX_INT_DIGITS` digits.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from workflow.rules.errors import BadInput, quoted

MAX_DEPTH = 64
MAX_INT_DIGITS = 30

# A string (escapes included; an unterminated one runs to the end) or a bracket. Everything else
# (numbers, literals, punctuation, white space) is skipped by ``finditer`` without a Python loop.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


class _NumberRefused(ValueError):
    """Raised from inside ``json.loads`` for a number the engine cannot keep exactly."""


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting of ``[`` and ``{`` in ``text``, counting stops just past ``limit``.

    Brackets inside strings do not count. Iterative, so any depth is measured safely.
    """
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif token in "]}":
            depth = max(0, depth - 1)
    return deepest


def _float(text: str) -> float:
    value = Decimal(text)
    number = float(value)
    if number in (float("inf"), float("-inf")):
        raise _NumberRefused(f"the number {quoted(text)} is out of range")
    if Decimal(repr(number)) != value:
        raise _NumberRefused(
            f"the number {quoted(text)} has more precision than can be kept exactly "
            "(at most 15 significant digits)"
        )
    return number


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _NumberRefused(f"the number {quoted(text)} has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _constant(name: str) -> Any:
    raise _NumberRefused(f"{name} is not a number JSON allows")


def parse_json(text: str, what: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse user-supplied JSON ``text``; ``what`` names it in the error (``--data``, …).

    Raises :class:`BadInput` with one short line for malformed JSON, nesting deeper than
    ``max_depth``, NaN/Infinity, a number that cannot be kept exactly, or a lone surrogate.
    """
    if nesting_depth(text, max_depth) > max_depth:
        raise BadInput(f"{what} is not valid JSON: nested more than {max_depth} levels deep")
    try:
        value = json.loads(text, parse_float=_float, parse_int=_int, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except _NumberRefused as exc:
        raise BadInput(f"{what} is not valid JSON: {exc}") from None
    except (ValueError, InvalidOperation, RecursionError) as exc:  # belt and braces
        raise BadInput(f"{what} is not valid JSON ({type(exc).__name__})") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{what} holds an unpaired surrogate (\\ud800–\\udfff)") from None
    return value


def parse_json_bytes(body: bytes, what: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """:func:`parse_json` over raw bytes, which must be UTF-8 (the first bad byte is named)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    return parse_json(text, what, max_depth=max_depth)


def utf8_position(data: bytes, start: int) -> tuple[int, int]:
    """The 1-based line and column (in characters) of byte ``start`` of UTF-8 ``data``.

    ``start`` is a ``UnicodeDecodeError.start``: everything before it decodes.
    """
    line_start = data.rfind(b"\n", 0, start) + 1
    column = len(data[line_start:start].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, start) + 1, column


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    """:func:`parse_json`, and the value must be an object."""
    value = parse_json(text, what)
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object")
    return value
