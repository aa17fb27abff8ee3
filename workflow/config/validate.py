"""Read and validate a cycle file; report every problem at once as ``FILE:LINE: message``."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace
from decimal import Decimal
from pathlib import Path as FilePath
from typing import Any, TypeVar

from workflow.config.checker import ID_PATTERN, Checker, TomlFloat, dotted
from workflow.config.letters import CYCLE_KEYS, read_letters, supervisor_titles
from workflow.config.lines import (
    MAX_NESTING,
    Path,
    key_lines,
    line_of,
    long_number_line,
    nesting_line,
)
from workflow.config.milestones import read_milestones
from workflow.config.model import (
    DEADLINE_POLICIES,
    NOTICE_DAY_POLICIES,
    CalendarChange,
    CalendarConfig,
    Cycle,
    NotificationRules,
)
from workflow.config.parties import check_unique_ids, read_groups, read_organisations
from workflow.rules.errors import BadInput, quoted
from workflow.rules.jsoninput import utf8_position
from workflow.rules.kpis import ScoringRules

_T = TypeVar("_T")


class ConfigInvalid(BadInput):
    """A cycle file with problems; ``problems`` holds one ``FILE:LINE: message`` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the cycle file")
        self.problems = problems


def read_cycle_file(path: FilePath) -> Cycle:
    """Read, parse and validate a cycle file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise BadInput(f"{path}: no such file") from exc
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = utf8_position(raw, exc.start)
        raise ConfigInvalid(
            [
                f"{path}:{line}: the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at "
                f"column {column}: {exc.reason})"
            ]
        ) from None
    return parse_cycle(text, str(path))


def parse_cycle(text: str, filename: str = "<cycle>") -> Cycle:
    """Parse and validate cycle-file text; raise ``ConfigInvalid`` listing every problem."""
    try:
        document = tomllib.loads(text, parse_float=TomlFloat)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        if match:
            line = match.group(1)
        elif "end of document" in str(exc):  # an unclosed string or array: the last line
            line = str(max(1, len(text.splitlines())))
        else:
            line = "1"
        raise ConfigInvalid(
            [f"{filename}:{line}: TOML syntax error: {one_line(str(exc))}"]
        ) from None
    except RecursionError:
        deep = f"arrays or inline tables nested more than {MAX_NESTING} levels deep"
        raise ConfigInvalid([f"{filename}:{nesting_line(text)}: {deep}"]) from None
    except ValueError:  # an integer of thousands of digits (Python's int conversion limit)
        line = long_number_line(text)
        raise ConfigInvalid([f"{filename}:{line}: a number with too many digits"]) from None
    checker = Checker()
    cycle = _Reader(checker, document).cycle()
    if checker.problems or cycle is None:
        lines = key_lines(text)
        problems = sorted(
            ((line_of(lines, path), message) for path, message in checker.problems),
            key=lambda item: item[0],
        )
        raise ConfigInvalid(
            [f"{filename}:{line}: {one_line(message)}" for line, message in problems]
        )
    return cycle


def one_line(message: str, limit: int = 400) -> str:
    """A problem as one printable line of at most ``limit`` characters (a last safety net)."""
    text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in message[: limit * 2])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def canonical_json(document: dict[str, Any]) -> str:
    """The parsed content as canonical JSON; comments and layout do not count."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class _Reader:
    """Walks the document once, building records and recording problems."""

    def __init__(self, checker: Checker, document: dict[str, Any]) -> None:
        self.c = checker
        self.doc = document

    def cycle(self) -> Cycle | None:
        c = self.c
        top = c.table(
            self.doc,
            (),
            (
                "cycle",
                "calendar",
                "notifications",
                "scoring",
                "milestones",
                "groups",
                "organisations",
            ),
            ("cycle", "milestones"),
        )
        if top is None:
            return None
        head = self._cycle_table()
        calendar = self._calendar()
        notifications = self._notifications()
        scoring = self._scoring()
        organisations = read_organisations(self.c, self.doc)
        groups, organisations = read_groups(self.c, self.doc, organisations)
        milestones = read_milestones(self.c, self.doc, calendar, notifications)
        check_unique_ids(self.c, self.doc)
        letters = read_letters(self.c, self.doc)
        if head is None or calendar is None or notifications is None or scoring is None:
            return None
        if milestones is None or groups is None or organisations is None:
            return None
        return Cycle(
            id=head["id"],
            name_th=head["name_th"],
            name_en=head.get("name_en"),
            starts=head["starts"],
            ends=head["ends"],
            opdc_email=head["opdc_email"],
            opdc_supervisor_email=head["opdc_supervisor_email"],
            calendar=calendar,
            notifications=notifications,
            scoring=scoring,
            milestones=milestones,
            groups=groups,
            organisations=organisations,
            document=self.doc,
            letters=letters,
        )

    def _cycle_table(self) -> dict[str, Any] | None:
        c, path = self.c, ("cycle",)
        required = (
            "id",
            "name_th",
            "starts",
            "ends",
            "timezone",
            "opdc_email",
            "opdc_supervisor_email",
        )
        if "cycle" not in self.doc:
            return None  # reported once, as a missing top-level key
        table = c.table(self.doc["cycle"], path, (*required, "name_en", *CYCLE_KEYS), required)
        if table is None:
            return None
        out: dict[str, Any] = {
            "id": c.string(table, "id", path),
            "name_th": c.string(table, "name_th", path),
            "name_en": c.string(table, "name_en", path, required=False),
            "starts": c.date(table, "starts", path),
            "ends": c.date(table, "ends", path),
            "opdc_email": c.email(table, "opdc_email", path),
            "opdc_supervisor_email": c.email(table, "opdc_supervisor_email", path),
        }
        if out["id"] is not None and not ID_PATTERN.match(out["id"]):
            c.problem((*path, "id"), f"cycle.id {quoted(out['id'])} may use only A-Z a-z 0-9 _ -")
            out["id"] = None
        timezone = c.string(table, "timezone", path)
        if timezone is not None and timezone != "Asia/Bangkok":
            c.problem(
                (*path, "timezone"), f"cycle.timezone must be Asia/Bangkok, not {quoted(timezone)}"
            )
        if out["starts"] and out["ends"] and out["ends"] < out["starts"]:
            c.problem((*path, "ends"), "cycle.ends is before cycle.starts")
        required_out = [key for key in out if key != "name_en"]
        return out if all(out[key] is not None for key in required_out) else None

    def _calendar(self) -> CalendarConfig | None:
        c, path = self.c, ("calendar",)
        table = c.table(
            self.doc.get("calendar", {}),
            path,
            ("holidays", "deadline_policy", "receiver_scope", "add", "remove"),
        )
        if table is None:
            return None
        ok = True
        holidays_country = c.string(table, "holidays", path) or "TH"
        if holidays_country != "TH":
            c.problem(
                (*path, "holidays"),
                f'calendar.holidays must be "TH", not {quoted(holidays_country)}',
            )
            ok = False
        policy = c.string(table, "deadline_policy", path) or "keep"
        if policy not in DEADLINE_POLICIES:
            c.problem(
                (*path, "deadline_policy"),
                f"calendar.deadline_policy must be one of "
                f"{', '.join(DEADLINE_POLICIES)}, not {quoted(policy)}",
            )
            ok = False
        scope = c.string(table, "receiver_scope", path) or "TH-10"
        if not c.known_province(scope):
            c.problem(
                (*path, "receiver_scope"),
                f"calendar.receiver_scope: unknown ISO 3166-2:TH code {quoted(scope)}",
            )
            ok = False
        changes = {name: self._calendar_changes(table, name) for name in ("add", "remove")}
        if not ok or changes["add"] is None or changes["remove"] is None:
            return None
        return CalendarConfig(holidays_country, policy, scope, changes["add"], changes["remove"])

    def _calendar_changes(
        self, table: dict[str, Any], name: str
    ) -> tuple[CalendarChange, ...] | None:
        c = self.c
        items = c.array(table, name, ("calendar",))
        if items is None:
            return () if name not in table else None
        changes: list[CalendarChange] = []
        ok = True
        for index, item in enumerate(items):
            path: Path = ("calendar", name, index)
            entry = c.table(item, path, ("date", "name", "scope"), ("date",))
            if entry is None:
                ok = False
                continue
            day = c.date(entry, "date", path)
            label = c.string(entry, "name", path, required=False) or ""
            scope = c.strings(entry, "scope", path) or []
            for position, code in enumerate(scope):
                if not c.known_province(code):
                    c.problem(
                        (*path, "scope", position),
                        f"unknown ISO 3166-2:TH code {quoted(code)} in {dotted(path)}.scope",
                    )
                    ok = False
            if day is None:
                ok = False
                continue
            changes.append(CalendarChange(day, label, tuple(scope)))
        return tuple(changes) if ok else None

    def _notifications(self) -> NotificationRules | None:
        c, path = self.c, ("notifications",)
        keys = (
            "send_time",
            "reminders",
            "overdue_after",
            "escalate_after",
            "catch_up_days",
            "max_attempts",
            "non_business_days",
        )
        table = c.table(self.doc.get("notifications", {}), path, keys)
        if table is None:
            return None
        defaults = NotificationRules()
        before = len(c.problems)
        send_time = c.string(table, "send_time", path) or defaults.send_time
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", send_time):
            c.problem(
                (*path, "send_time"),
                f"notifications.send_time must be HH:MM, not {quoted(send_time)}",
            )
        shift = c.string(table, "non_business_days", path) or defaults.non_business_days
        if shift not in NOTICE_DAY_POLICIES:
            c.problem(
                (*path, "non_business_days"),
                f"notifications.non_business_days must be one of {', '.join(NOTICE_DAY_POLICIES)}"
                f", not {quoted(shift)}",
            )
        rules = NotificationRules(
            send_time=send_time,
            reminders=_or(c.offsets(table, "reminders", path), defaults.reminders),
            overdue_after=_or(
                c.integer(table, "overdue_after", path, minimum=1), defaults.overdue_after
            ),
            escalate_after=_or(
                c.integer(table, "escalate_after", path, minimum=1), defaults.escalate_after
            ),
            catch_up_days=_or(
                c.integer(table, "catch_up_days", path, minimum=0), defaults.catch_up_days
            ),
            max_attempts=_or(
                c.integer(table, "max_attempts", path, minimum=1), defaults.max_attempts
            ),
            non_business_days=shift,
        )
        return rules if len(c.problems) == before else None

    def _scoring(self) -> ScoringRules | None:
        c, path = self.c, ("scoring",)
        table = c.table(
            self.doc.get("scoring", {}),
            path,
            ("dimension_weights", "approved_kpis", "tiers", "floor"),
        )
        if table is None:
            return None
        before = len(c.problems)
        weights: dict[str, Decimal] | None = None
        if "dimension_weights" in table:
            weights = self._dimension_weights(table["dimension_weights"])
        approved = c.strings(table, "approved_kpis", path) or []
        tiers: list[tuple[str, Decimal]] = []
        for index, item in enumerate(c.array(table, "tiers", path) or []):
            where: Path = (*path, "tiers", index)
            tier = c.table(item, where, ("name", "min"), ("name", "min"))
            if tier is None:
                continue
            name, minimum = c.string(tier, "name", where), c.decimal_string(tier, "min", where)
            if name is not None and minimum is not None:
                if any(existing == name for existing, _ in tiers):
                    c.problem((*where, "name"), f"duplicate tier name {quoted(name)}")
                tiers.append((name, minimum))
        floor = c.decimal_string(table, "floor", path) if "floor" in table else None
        if len(c.problems) != before:
            return None
        return ScoringRules(weights, frozenset(approved), tuple(tiers), floor)

    def _dimension_weights(self, value: Any) -> dict[str, Decimal] | None:
        c, path = self.c, ("scoring", "dimension_weights")
        if not isinstance(value, dict):
            c.problem(path, "scoring.dimension_weights must be a table of dimension = weight")
            return None
        weights: dict[str, Decimal] = {}
        before = len(c.problems)
        for key, raw in value.items():
            if not re.fullmatch(r"[1-9]\d*", key):
                c.problem((*path, key), f"dimension {quoted(key)} must be a positive whole number")
                continue
            number = c.number(raw, (*path, key))
            if number is not None and number < 0:
                c.problem((*path, key), f"dimension {key} weight must not be negative")
            elif number is not None:
                weights[key] = number
        total = sum(weights.values(), Decimal(0))
        # The sum is only worth reporting when every weight could be read.
        if len(c.problems) == before and total != 100:
            c.problem(path, f"scoring.dimension_weights add up to {total}, not 100")
        return weights


def _or(value: _T | None, default: _T) -> _T:
    """``value`` unless it is None (an explicit empty list or 0 is kept)."""
    return default if value is None else value


def cycle_settings(document: dict[str, Any]) -> Cycle:
    """A stored (already valid) document as a ``Cycle`` without its parties.

    The engine reads organisations from the database; this gives it the calendar, rules,
    scoring and milestones without re-reading 100,000 organisations on every command.
    """
    slim = {key: value for key, value in document.items() if key not in ("groups", "organisations")}
    checker = Checker(trusted=True)
    cycle = _Reader(checker, slim).cycle()
    if cycle is not None:  # the parties' supervisor titles are in the full document
        titles = supervisor_titles(document)
        cycle = replace(cycle, letters=replace(cycle.letters, supervisor_titles=titles))
    if cycle is None:
        problems = "; ".join(message for _, message in checker.problems)
        raise BadInput(f"the stored cycle no longer validates: {problems}")
    return cycle
