"""Typed readers over a parsed TOML tree that collect problems instead of stopping at the first.

Each problem is kept with the key path it concerns; line numbers are looked up only when there
are problems to print, so a valid 100,000-organisation file is never scanned twice.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from workflow.config.lines import Path
from workflow.rules.errors import quoted

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
AGENCY_ID = re.compile(r"^[A-Za-z0-9-]+$")


@cache
def province_codes() -> frozenset[str]:
    """Every ISO 3166-2:TH subdivision code."""
    import pycountry  # only when a code is checked: its tables take a while to load

    subdivisions = pycountry.subdivisions.get(country_code="TH")  # type: ignore[no-untyped-call]
    return frozenset(sub.code for sub in subdivisions)


class Checker:
    """Reads values at paths and records what is wrong with them."""

    def __init__(self, *, trusted: bool = False) -> None:
        self.problems: list[tuple[Path, str]] = []
        # A document validated when it was loaded: skip the lookups in external tables
        # (ISO codes), which cost more than reading the rest of it.
        self.trusted = trusted

    def known_province(self, code: str) -> bool:
        """Whether ``code`` is an ISO 3166-2:TH code (always, for a trusted document)."""
        return self.trusted or code in province_codes()

    def problem(self, path: Path, message: str) -> None:
        """Record one problem at ``path``."""
        self.problems.append((path, message))

    def table(
        self,
        value: Any,
        path: Path,
        allowed: Iterable[str],
        required: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """A table: report unknown and missing keys; None when ``value`` is not a table."""
        name = dotted(path)
        if not isinstance(value, dict):
            self.problem(path, f"{name} must be a table")
            return None
        allowed_set = set(allowed)
        for key in value:
            if key not in allowed_set:
                hint = ", ".join(sorted(allowed_set))
                self.problem((*path, key), f"unknown key {dotted((*path, key))} (allowed: {hint})")
        for key in required:
            if key not in value:
                self.problem(path, f"missing required key {dotted((*path, key))}")
        return value

    def string(
        self, table: dict[str, Any], key: str, path: Path, *, required: bool = True
    ) -> str | None:
        """A non-empty string."""
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, str):
            self.problem((*path, key), f"{dotted((*path, key))} must be a string")
            return None
        if required and not value.strip():
            self.problem((*path, key), f"{dotted((*path, key))} must not be empty")
            return None
        return value

    def email(self, table: dict[str, Any], key: str, path: Path) -> str | None:
        """An e-mail address."""
        value = self.string(table, key, path)
        if value is not None and not EMAIL.match(value):
            self.problem(
                (*path, key), f"{dotted((*path, key))}: not an e-mail address: {quoted(value)}"
            )
            return None
        return value

    def date(self, table: dict[str, Any], key: str, path: Path) -> dt.date | None:
        """A ``YYYY-MM-DD`` string naming a real day."""
        value = self.string(table, key, path)
        if value is None:
            return None
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError(value)
            return dt.date.fromisoformat(value)
        except ValueError:
            self.problem((*path, key), f"{dotted((*path, key))}: impossible date {quoted(value)}")
            return None

    def integer(
        self, table: dict[str, Any], key: str, path: Path, *, minimum: int | None = None
    ) -> int | None:
        """A whole number, optionally at least ``minimum``."""
        if key not in table:
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem((*path, key), f"{dotted((*path, key))} must be a whole number")
            return None
        if minimum is not None and value < minimum:
            self.problem((*path, key), f"{dotted((*path, key))} must be at least {minimum}")
            return None
        return value

    def number(self, value: Any, path: Path) -> Decimal | None:
        """A finite TOML integer or float, as the exact Decimal of the number as written.

        NaN and infinities are refused, and so is a float written with more precision than
        the file's stored form (a float) keeps, such as ``50.000000000000000000001``.
        """
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(path, f"{dotted(path)} must be a number")
            return None
        if isinstance(value, int):
            return Decimal(value)
        written = getattr(value, "text", None) or repr(value)
        if not math.isfinite(value):
            self.problem(path, f"{dotted(path)} must be a finite number, not {written}")
            return None
        exact = Decimal(written.replace("_", ""))
        if exact != Decimal(repr(float(value))):
            self.problem(
                path,
                f"{dotted(path)}: {quoted(written)} has more precision than can be kept "
                "(at most 15 significant digits)",
            )
            return None
        return exact

    def decimal_string(self, table: dict[str, Any], key: str, path: Path) -> Decimal | None:
        """A decimal written as a string (``"3.0000"``)."""
        value = self.string(table, key, path)
        if value is None:
            return None
        try:
            number = Decimal(value)
            if not number.is_finite():
                raise InvalidOperation(value)
        except InvalidOperation:
            self.problem(
                (*path, key), f"{dotted((*path, key))}: not a decimal string: {quoted(value)}"
            )
            return None
        return number

    def array(self, table: dict[str, Any], key: str, path: Path) -> list[Any] | None:
        """An array."""
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, list):
            self.problem((*path, key), f"{dotted((*path, key))} must be an array")
            return None
        return value

    def strings(self, table: dict[str, Any], key: str, path: Path) -> list[str] | None:
        """An array of strings."""
        items = self.array(table, key, path)
        if items is None:
            return None
        good = True
        for index, item in enumerate(items):
            if not isinstance(item, str):
                self.problem(
                    (*path, key, index), f"{dotted((*path, key))}[{index}] must be a string"
                )
                good = False
        return items if good else None

    def offsets(self, table: dict[str, Any], key: str, path: Path) -> tuple[int, ...] | None:
        """Reminder offsets: whole numbers >= 1 (days before the due date)."""
        items = self.array(table, key, path)
        if items is None:
            return None
        good = True
        for index, item in enumerate(items):
            where = (*path, key, index)
            if isinstance(item, bool) or not isinstance(item, int):
                self.problem(where, f"{dotted((*path, key))}[{index}] must be a whole number")
                good = False
            elif item < 1:
                self.problem(
                    where,
                    f"{dotted((*path, key))}: a reminder {item} days before the due date falls "
                    "on or after the deadline; offsets must be whole numbers >= 1",
                )
                good = False
        if good and len(set(items)) != len(items):
            self.problem((*path, key), f"{dotted((*path, key))} repeats an offset")
        return tuple(sorted(set(items), reverse=True)) if good else None


def dotted(path: Path) -> str:
    """``milestones[3].due`` style name of a path; an odd or long key appears quoted, cut short."""
    text = ""
    for part in path:
        if isinstance(part, str) and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", part):
            part = quoted(part)
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class TomlFloat(float):
    """A TOML float that remembers how it was written (``tomllib``'s ``parse_float`` hook)."""

    text: str

    def __new__(cls, text: str) -> TomlFloat:
        """The float of ``text``, keeping ``text``."""
        number = super().__new__(cls, text.replace("_", ""))
        number.text = text
        return number
