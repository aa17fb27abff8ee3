"""The [[milestones]] of a cycle file."""

from __future__ import annotations

from typing import Any

from states.machine import EVENTS, OWN
from workflow.config.checker import ID_PATTERN, Checker
from workflow.config.letters import WORDING_KEYS, read_wording
from workflow.config.lines import Path
from workflow.config.model import (
    ACTORS,
    CHANGE_CUTOFF_ID,
    KINDS,
    MILESTONE_KINDS,
    CalendarConfig,
    Milestone,
    NotificationRules,
)
from workflow.rules.calendar import business_calendar
from workflow.rules.errors import quoted

# Which role fires the event that meets a deliverable of each actor.
ACTOR_ROLES = {"organisation": OWN, "opdc": "admin", "committee": "committee", "nso": "admin"}


def read_milestones(
    c: Checker,
    doc: dict[str, Any],
    calendar: CalendarConfig | None,
    rules: NotificationRules | None,
) -> tuple[Milestone, ...] | None:
    """Every milestone, with its due date moved when the deadline policy says so."""
    items = c.array(doc, "milestones", ())
    if items is None:
        return None
    keys = (
        "id",
        "kind",
        "actor",
        "title_th",
        "title_en",
        "due",
        "start",
        "event",
        "reminders",
        "penalty_per_business_day",
        "applies_to",
        *WORDING_KEYS,
    )
    before = len(c.problems)
    seen: set[str] = set()
    penalised: str | None = None
    out: list[Milestone] = []
    for index, item in enumerate(items):
        path: Path = ("milestones", index)
        table = c.table(item, path, keys, ("id", "kind", "actor", "title_th"))
        if table is None:
            continue
        ident = c.string(table, "id", path)
        name = f"milestones[{index}]" if ident is None else _name(ident)
        if ident is not None and not ID_PATTERN.match(ident):
            c.problem((*path, "id"), f"milestone id {quoted(ident)} may use only A-Z a-z 0-9 _ -")
        if ident is not None and ident in seen:
            c.problem((*path, "id"), f"duplicate milestone id {quoted(ident)}")
        seen.add(ident or "")
        kind = c.string(table, "kind", path)
        if kind is not None and kind not in MILESTONE_KINDS:
            c.problem(
                (*path, "kind"),
                f"milestone {name}: kind must be one of {', '.join(MILESTONE_KINDS)}, "
                f"not {quoted(kind)}",
            )
        # Checks that depend on the kind only make sense once the kind is known.
        known = kind in MILESTONE_KINDS
        actor = c.string(table, "actor", path)
        if actor is not None and actor not in ACTORS:
            c.problem(
                (*path, "actor"),
                f"milestone {name}: actor must be one of {', '.join(ACTORS)}, not {quoted(actor)}",
            )
        due, start = c.date(table, "due", path), c.date(table, "start", path)
        if kind in ("cutoff", "window") and "due" not in table:
            c.problem(path, f"milestone {name}: a {kind} needs a due date")
        if kind == "window" and "start" not in table:
            c.problem(path, f"milestone {name}: a window needs a start date")
        if known and kind != "window" and "start" in table:
            c.problem((*path, "start"), f"milestone {name}: only windows have a start date")
        if start and due and start > due:
            c.problem((*path, "start"), f"milestone {name}: window starts after its due date")
        event = c.string(table, "event", path)
        if kind == "deliverable" and "event" not in table:
            c.problem(path, f"milestone {name}: a deliverable needs an event")
        elif known and kind != "deliverable" and "event" in table:
            c.problem((*path, "event"), f"milestone {name}: only deliverables have an event")
        elif event is not None and event not in EVENTS:
            c.problem(
                (*path, "event"),
                f"milestone {name}: unknown event {quoted(event)} (known: {', '.join(EVENTS)})",
            )
        elif (
            event is not None
            and actor in ACTOR_ROLES
            and ACTOR_ROLES[actor] not in EVENTS[event].roles
        ):
            c.problem(
                (*path, "event"),
                f"milestone {name}: event {event} is not fired by its actor {actor}",
            )
        reminders = c.offsets(table, "reminders", path)
        if reminders is not None and known and (kind != "deliverable" or "due" not in table):
            c.problem(
                (*path, "reminders"),
                f"milestone {name}: reminders need a deliverable with a due date",
            )
        penalty = c.decimal_string(table, "penalty_per_business_day", path)
        if penalty is not None:
            if penalty < 0:
                c.problem((*path, "penalty_per_business_day"), "a penalty must not be negative")
            if known and (kind != "deliverable" or "due" not in table):
                c.problem(
                    (*path, "penalty_per_business_day"),
                    f"milestone {name}: only a deliverable with a due date can carry a penalty",
                )
            if penalised is not None:
                c.problem(
                    (*path, "penalty_per_business_day"),
                    f"only one milestone may carry a penalty ({penalised} already does)",
                )
            penalised = name
        applies = c.strings(table, "applies_to", path)
        for position, value in enumerate(applies or []):
            if value not in KINDS:
                c.problem(
                    (*path, "applies_to", position),
                    f"milestone {name}: applies_to {quoted(value)} is not one of "
                    f"{', '.join(KINDS)}",
                )
        if applies is not None and not applies:
            c.problem((*path, "applies_to"), f"milestone {name}: applies_to must not be empty")
        if ident == CHANGE_CUTOFF_ID and kind not in (None, "cutoff"):
            c.problem((*path, "kind"), f"milestone {CHANGE_CUTOFF_ID} must be a cutoff")
        title_th = c.string(table, "title_th", path)
        wording = read_wording(c, table, path, name)
        if len(c.problems) != before or not (ident and kind and actor and title_th):
            continue
        moved = due
        if (
            due is not None
            and calendar is not None
            and kind != "window"
            and calendar.deadline_policy == "next_business_day"
        ):
            # The holiday tables load only for a cycle whose deadlines move.
            moved = business_calendar(calendar).next_business_day(due, calendar.receiver_scope)
        default_reminders = rules.reminders if rules else ()
        out.append(
            Milestone(
                id=ident,
                kind=kind,
                actor=actor,
                title_th=title_th,
                title_en=c.string(table, "title_en", path, required=False),
                due=moved,
                published_due=due,
                start=start,
                event=event,
                reminders=(reminders if reminders is not None else default_reminders)
                if kind == "deliverable" and due
                else (),
                penalty_per_business_day=penalty,
                applies_to=frozenset(applies) if applies else frozenset(KINDS),
                **wording,
            )
        )
    return tuple(out) if len(c.problems) == before else None


def _name(ident: str) -> str:
    """How messages name a milestone: its id, quoted and cut short when it is no valid id."""
    return ident if ID_PATTERN.match(ident) and len(ident) <= 40 else quoted(ident)
