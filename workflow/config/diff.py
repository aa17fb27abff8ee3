"""Differences between two parsed cycle documents, as readable change records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

KEYED_SECTIONS = ("milestones", "groups", "organisations")
# Sections whose order means something (milestones are listed in file order); the order of
# groups and organisations is not stored, so reordering them is no change.
ORDERED_SECTIONS = ("milestones",)


@dataclass(frozen=True)
class Change:
    """One difference: ``op`` is ``+`` (added), ``-`` (removed) or ``~`` (changed)."""

    op: str
    path: str
    old: Any = None
    new: Any = None

    def line(self) -> str:
        """One printable line."""
        if self.op == "~":
            return f"~ {self.path}: {_show(self.old)} → {_show(self.new)}"
        return f"{self.op} {self.path}"

    def as_json(self) -> dict[str, Any]:
        """The change as recorded in the ``config`` history entry."""
        out: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.op != "+":
            out["old"] = self.old
        if self.op != "-":
            out["new"] = self.new
        return out


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def diff_documents(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every difference between two documents; list sections compare items by their id."""
    changes: list[Change] = []
    for section in sorted(set(old) | set(new)):
        before, after = old.get(section), new.get(section)
        if section in KEYED_SECTIONS:
            _diff_keyed(section, before or [], after or [], changes)
        else:
            _diff_value(section, before, after, changes)
    return changes


def _diff_keyed(section: str, old: list[Any], new: list[Any], changes: list[Change]) -> None:
    before = {item.get("id"): item for item in old if isinstance(item, dict)}
    after = {item.get("id"): item for item in new if isinstance(item, dict)}
    for ident in before:
        if ident not in after:
            changes.append(Change("-", f"{section}.{ident}", old=before[ident]))
    kept_before = [ident for ident in before if ident in after]
    kept_after = [ident for ident in after if ident in before]
    if section in ORDERED_SECTIONS and kept_before != kept_after:
        changes.append(Change("~", f"{section} (order)", kept_before, kept_after))
    for ident, item in after.items():
        path = f"{section}.{ident}"
        if ident not in before:
            changes.append(Change("+", path, new=item))
        else:
            _diff_value(path, before[ident], item, changes)


def _diff_value(path: str, old: Any, new: Any, changes: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if key not in new:
                changes.append(Change("~", f"{path}.{key}", old[key], None))
            elif key not in old:
                changes.append(Change("~", f"{path}.{key}", None, new[key]))
            else:
                _diff_value(f"{path}.{key}", old[key], new[key], changes)
    elif old != new:
        changes.append(Change("~", path, old, new))
