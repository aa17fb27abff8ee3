"""The optional cycle-file keys that shape letters (all have defaults; see docs/CYCLE_FILE.md).

- each ``[[milestones]]`` entry: ``deliverable_th``/``deliverable_en`` (the deliverable as a noun
  phrase) and ``verb_th``/``verb_en`` (the verb it takes: ``จัดส่ง``, ``submit``);
- each ``[[groups]]``/``[[organisations]]`` entry: ``supervisor_title_th``/``_en`` (whom an
  escalation is addressed to);
- ``[cycle]``: ``public_url``, ``contact_name_th``/``_en``, ``contact_phone``, ``contact_email``,
  ``address_th``/``_en`` (how and where to submit, whom to ask).
"""

from __future__ import annotations

import re
from typing import Any

from workflow.config.checker import Checker
from workflow.config.lines import Path
from workflow.config.model import LetterSettings
from workflow.rules.errors import quoted

WORDING_KEYS = ("deliverable_th", "verb_th", "deliverable_en", "verb_en")
TITLE_KEYS = ("supervisor_title_th", "supervisor_title_en")
CYCLE_KEYS = (
    "public_url",
    "contact_name_th",
    "contact_name_en",
    "contact_phone",
    "contact_email",
    "address_th",
    "address_en",
)
_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")


def _line(c: Checker, table: dict[str, Any], key: str, path: Path) -> str | None:
    """A non-empty string on one line (letters print it as it is)."""
    value = c.string(table, key, path)
    if value is not None and ("\n" in value or "\r" in value):
        c.problem((*path, key), f"{key} must be one line")
        return None
    return value.strip() if value is not None else None


def read_wording(c: Checker, table: dict[str, Any], path: Path, name: str) -> dict[str, str | None]:
    """A milestone's optional wording keys; a verb needs the deliverable it governs."""
    values = {key: _line(c, table, key, path) for key in WORDING_KEYS}
    for lang in ("th", "en"):
        if f"verb_{lang}" in table and f"deliverable_{lang}" not in table:
            c.problem(
                (*path, f"verb_{lang}"),
                f"milestone {name}: verb_{lang} needs deliverable_{lang} (the phrase it governs)",
            )
    return values


def check_titles(c: Checker, table: dict[str, Any], path: Path) -> None:
    """A group's or organisation's optional supervisor titles: non-empty, one line."""
    for key in TITLE_KEYS:
        _line(c, table, key, path)


def read_letters(c: Checker, document: dict[str, Any]) -> LetterSettings:
    """The ``[cycle]`` letter keys and every party's supervisor titles (problems recorded)."""
    head = document.get("cycle")
    table = head if isinstance(head, dict) else {}
    path: Path = ("cycle",)
    url = _line(c, table, "public_url", path)
    if url is not None and not _URL.fullmatch(url):
        c.problem(
            (*path, "public_url"),
            f"cycle.public_url must be an http:// or https:// address, not {quoted(url)}",
        )
        url = None
    phone = _line(c, table, "contact_phone", path)
    if phone is not None and not any(char.isdigit() for char in phone):
        c.problem(
            (*path, "contact_phone"), f"cycle.contact_phone is not a phone number: {quoted(phone)}"
        )
    email = c.email(table, "contact_email", path) if "contact_email" in table else None
    return LetterSettings(
        public_url=url.rstrip("/") if url else None,
        contact_name_th=_line(c, table, "contact_name_th", path),
        contact_name_en=_line(c, table, "contact_name_en", path),
        contact_phone=phone,
        contact_email=email,
        address_th=_line(c, table, "address_th", path),
        address_en=_line(c, table, "address_en", path),
        supervisor_titles=supervisor_titles(document),
    )


def supervisor_titles(document: dict[str, Any]) -> tuple[tuple[str, str | None, str | None], ...]:
    """(party id, Thai, English) for every group and organisation that names a supervisor title.

    Reads the raw document (problems are reported by :func:`check_titles`); the engine keeps
    parties in the database, so this is how a stored cycle's settings learn the titles.
    """
    found: list[tuple[str, str | None, str | None]] = []
    for section in ("groups", "organisations"):
        items = document.get(section)
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            th, en = (_clean(item.get(key)) for key in TITLE_KEYS)
            if th is not None or en is not None:
                found.append((item["id"], th, en))
    return tuple(found)


def _clean(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
