"""The groups and organisations of a cycle file: the parties to the agreements."""

from __future__ import annotations

from typing import Any

from workflow.config.checker import AGENCY_ID, ID_PATTERN, Checker, province_codes
from workflow.config.letters import TITLE_KEYS, check_titles
from workflow.config.lines import Path
from workflow.config.model import Group, Organisation
from workflow.rules.errors import quoted


def read_organisations(c: Checker, doc: dict[str, Any]) -> tuple[Organisation, ...] | None:
    """The [[organisations]]: provinces (ISO 3166-2:TH codes) and agencies."""
    items = c.array(doc, "organisations", ())
    if items is None:
        return () if "organisations" not in doc else None
    keys = ("id", "kind", "name_th", "name_en", "email", "supervisor_email", *TITLE_KEYS)
    required = ("id", "kind", "name_th", "email", "supervisor_email")
    out: list[Organisation] = []
    codes = province_codes()
    for index, item in enumerate(items):
        path: Path = ("organisations", index)
        table = c.table(item, path, keys, required)
        if table is None:
            continue
        ident, kind = c.string(table, "id", path), c.string(table, "kind", path)
        if kind is not None and kind not in ("province", "agency"):
            c.problem(
                (*path, "kind"),
                f"organisations[{index}].kind must be province or agency, not {quoted(kind)}",
            )
            kind = None
        if ident is not None and kind == "province" and ident not in codes:
            c.problem(
                (*path, "id"), f"unknown province code {quoted(ident)} (not an ISO 3166-2:TH code)"
            )
        if ident is not None and kind == "agency" and not AGENCY_ID.match(ident):
            c.problem((*path, "id"), f"agency id {quoted(ident)} may use only A-Z a-z 0-9 -")
        name_th = c.string(table, "name_th", path)
        email = c.email(table, "email", path)
        supervisor = c.email(table, "supervisor_email", path)
        name_en = c.string(table, "name_en", path, required=False)
        check_titles(c, table, path)
        if ident and kind and name_th and email and supervisor:
            out.append(Organisation(ident, kind, name_th, name_en, email, supervisor, None))
    return tuple(out)


def read_groups(
    c: Checker, doc: dict[str, Any], organisations: tuple[Organisation, ...] | None
) -> tuple[tuple[Group, ...] | None, tuple[Organisation, ...] | None]:
    """The groups, and the organisations with each province's group filled in."""
    items = c.array(doc, "groups", ())
    if items is None:
        items = [] if "groups" not in doc else None
    if items is None:
        return None, organisations
    keys = ("id", "name_th", "name_en", "email", "supervisor_email", "provinces", *TITLE_KEYS)
    # Every province the file declares, valid or not, so that a problem in one organisation
    # (a missing e-mail, say) is reported once and not again as "not in this file".
    provinces = _declared_provinces(doc)
    member_of: dict[str, str] = {}
    out: list[Group] = []
    for index, item in enumerate(items):
        path: Path = ("groups", index)
        table = c.table(item, path, keys, [k for k in keys[:6] if k != "name_en"])
        if table is None:
            continue
        ident = c.string(table, "id", path)
        if ident is not None and not ID_PATTERN.match(ident):
            c.problem((*path, "id"), f"group id {quoted(ident)} may use only A-Z a-z 0-9 _ -")
        # How messages name the group: a long or malformed id is quoted and cut short.
        label = (
            ident
            if ident is None or (ID_PATTERN.match(ident) and len(ident) <= 40)
            else quoted(ident)
        )
        members = c.strings(table, "provinces", path) or []
        for position, code in enumerate(members):
            where: Path = (*path, "provinces", position)
            if code not in province_codes():
                c.problem(where, f"unknown province code {quoted(code)} in group {label}")
            elif organisations is not None and code not in provinces:
                c.problem(
                    where,
                    f"group {label} lists {code}, which is not a province organisation "
                    "of this file",
                )
            elif code in member_of and member_of[code] == (label or "?"):
                c.problem(where, f"province {code} is listed twice in group {label}")
            elif code in member_of:
                c.problem(where, f"province {code} is in two groups: {member_of[code]} and {label}")
            else:
                member_of[code] = label or "?"
        name_th = c.string(table, "name_th", path)
        email, supervisor = (
            c.email(table, "email", path),
            c.email(table, "supervisor_email", path),
        )
        name_en = c.string(table, "name_en", path, required=False)
        check_titles(c, table, path)
        if ident and name_th and email and supervisor:
            out.append(Group(ident, name_th, name_en, email, supervisor, tuple(members)))
    if organisations is None:
        return tuple(out), None
    for code, index in provinces.items():
        if code not in member_of and code in province_codes():
            c.problem(("organisations", index, "id"), f"province {code} is in no group")
    placed = [
        Organisation(
            o.id, o.kind, o.name_th, o.name_en, o.email, o.supervisor_email, member_of.get(o.id)
        )
        for o in organisations
    ]
    return tuple(out), tuple(placed)


def _declared_provinces(doc: dict[str, Any]) -> dict[str, int]:
    """``{id: index}`` of every ``[[organisations]]`` entry of kind province (first wins)."""
    items = doc.get("organisations")
    found: dict[str, int] = {}
    for index, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict) and item.get("kind") == "province":
            ident = item.get("id")
            if isinstance(ident, str):
                found.setdefault(ident, index)
    return found


def check_unique_ids(c: Checker, doc: dict[str, Any]) -> None:
    """Ids are unique across groups and organisations."""
    seen: dict[str, str] = {}
    for section in ("groups", "organisations"):
        items = doc.get(section)
        for index, item in enumerate(items if isinstance(items, list) else []):
            ident = item.get("id") if isinstance(item, dict) else None
            if not isinstance(ident, str):
                continue
            if ident in seen:
                c.problem(
                    (section, index, "id"), f"duplicate id {quoted(ident)} (also {seen[ident]})"
                )
            else:
                seen[ident] = f"{section}[{index}]"
