"""The declared agreement machine: states, events, who may fire them and their guards, as data.

Read top to bottom: the states, the guard functions, the event table, then the single
model-less ``transitions.Machine`` built from the table and checked when it is built (every
state reachable from ``drafted``, every non-final state has a way out). Events are fired on a
small plain object (``Subject``) that carries the agreement's state; an agreement row is never
a model of the machine, so there is exactly one Machine however many agreements there are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine

from states.errors import EventRefused, MachineDefinitionError

STATES: tuple[str, ...] = (
    "drafted",
    "proposed",
    "negotiating",
    "agreed",
    "signed",
    "template_submitted",
    "audited",
    "sar6_submitted",
    "esar9_submitted",
    "sar12_submitted",
    "evaluated",
    "results_approved",
    "incentive_allocated",
)
INITIAL = "drafted"
FINAL = "incentive_allocated"

# Roles that may fire events; "own" is the agreement's own province, group or agency role.
OWN = "own"
ROLE_KINDS = ("admin", "committee", "evaluator", "auditor", "province", "group", "agency")

AFTER_SIGNING = STATES[STATES.index("signed") :]
REPORTING = ("signed", "template_submitted", "audited")


@dataclass
class GuardContext:
    """What guards may look at: the facts of one agreement at the event's effective time."""

    at: int
    off_list_kpis: list[str] = field(default_factory=list)
    change_cutoff: int | None = None
    change_cutoff_label: str | None = None
    change_open: bool = False
    published: bool = False
    sar12_waived: bool = False
    waive_target_status: str | None = None
    waive_target: str | None = None


@dataclass
class Subject:
    """The plain object an event is fired on: just the state, plus the guard context."""

    state: str


Guard = Callable[[GuardContext], None]


def every_kpi_approved(ctx: GuardContext) -> None:
    """``agree`` straight from ``proposed`` needs every proposed KPI on the approved list."""
    if ctx.off_list_kpis:
        off = ", ".join(ctx.off_list_kpis)
        raise EventRefused(
            f"KPIs {off} are not on the approved list: start_negotiation first, then agree"
        )


def some_kpi_off_list(ctx: GuardContext) -> None:
    """Negotiation is only for agreements with a KPI off the approved list."""
    if not ctx.off_list_kpis:
        raise EventRefused("every proposed KPI is on the approved list: agree directly")


def before_change_cutoff(ctx: GuardContext) -> None:
    """Change requests are accepted until the end of the ``change_requests`` cutoff day."""
    if ctx.change_cutoff is not None and ctx.at >= ctx.change_cutoff:
        raise EventRefused(
            f"the deadline for change requests has passed ({ctx.change_cutoff_label})"
        )
    if ctx.change_open:
        raise EventRefused("a change request is already open: approve or reject it first")


def change_is_open(ctx: GuardContext) -> None:
    """Only an open change request can be approved or rejected."""
    if not ctx.change_open:
        raise EventRefused("there is no open change request")


def not_yet_published(ctx: GuardContext) -> None:
    """An agreement is published once."""
    if ctx.published:
        raise EventRefused("the agreement is already published")


def sar12_waived(ctx: GuardContext) -> None:
    """Evaluation before the SAR 12 arrives needs the SAR 12 to be waived."""
    if not ctx.sar12_waived:
        raise EventRefused("evaluate needs the SAR 12 submitted (or waived)")


def milestone_waivable(ctx: GuardContext) -> None:
    """Only a deliverable that is not yet met can be waived."""
    if ctx.waive_target_status in ("met", "late", "waived"):
        raise EventRefused(f"milestone {ctx.waive_target} is already {ctx.waive_target_status}")


@dataclass(frozen=True)
class Transition:
    """One way an event can go: from any of ``sources`` to ``dest`` (None: state unchanged)."""

    sources: tuple[str, ...]
    dest: str | None
    guards: tuple[Guard, ...] = ()


@dataclass(frozen=True)
class EventSpec:
    """An event, the roles that may fire it, and its transitions."""

    name: str
    roles: frozenset[str]
    transitions: tuple[Transition, ...]


def _event(name: str, roles: Iterable[str], *transitions: Transition) -> EventSpec:
    return EventSpec(name, frozenset(roles), tuple(transitions))


EVENTS: dict[str, EventSpec] = {
    spec.name: spec
    for spec in (
        _event("propose_kpis", [OWN], Transition(("drafted",), "proposed")),
        _event(
            "start_negotiation",
            ["admin"],
            Transition(("proposed",), "negotiating", (some_kpi_off_list,)),
        ),
        _event(
            "agree",
            ["admin", "committee"],
            Transition(("proposed",), "agreed", (every_kpi_approved,)),
            Transition(("negotiating",), "agreed"),
        ),
        _event("sign", ["admin"], Transition(("agreed",), "signed")),
        _event("publish", [OWN], Transition(AFTER_SIGNING, None, (not_yet_published,))),
        _event("submit_kpi_template", [OWN], Transition(("signed",), "template_submitted")),
        _event("send_kpi_audit", ["admin"], Transition(("template_submitted",), "audited")),
        _event(
            "request_change",
            [OWN],
            Transition((*REPORTING, "sar6_submitted"), None, (before_change_cutoff,)),
        ),
        _event("approve_change", ["admin"], Transition(AFTER_SIGNING, None, (change_is_open,))),
        _event("reject_change", ["admin"], Transition(AFTER_SIGNING, None, (change_is_open,))),
        _event("submit_sar6", [OWN], Transition(REPORTING, "sar6_submitted")),
        _event(
            "submit_esar9", [OWN], Transition((*REPORTING, "sar6_submitted"), "esar9_submitted")
        ),
        _event(
            "submit_sar12",
            [OWN],
            Transition((*REPORTING, "sar6_submitted", "esar9_submitted"), "sar12_submitted"),
        ),
        _event("waive", ["admin"], Transition(STATES, None, (milestone_waivable,))),
        _event(
            "evaluate",
            ["evaluator"],
            Transition(("sar12_submitted",), "evaluated"),
            Transition(
                (*REPORTING, "sar6_submitted", "esar9_submitted"), "evaluated", (sar12_waived,)
            ),
        ),
        _event("approve_results", ["admin"], Transition(("evaluated",), "results_approved")),
        _event(
            "allocate_incentive",
            ["admin"],
            Transition(("results_approved",), "incentive_allocated"),
        ),
    )
}


def _check_definition() -> None:
    """Every state reachable from the initial one; every non-final state has a way out."""
    edges: dict[str, set[str]] = {state: set() for state in STATES}
    for spec in EVENTS.values():
        for transition in spec.transitions:
            for source in transition.sources:
                if source not in edges:
                    raise MachineDefinitionError(f"{spec.name}: unknown source state {source}")
                if transition.dest is not None:
                    edges[source].add(transition.dest)
    reached, frontier = {INITIAL}, [INITIAL]
    while frontier:
        for nxt in edges[frontier.pop()] - reached:
            reached.add(nxt)
            frontier.append(nxt)
    if missing := [state for state in STATES if state not in reached]:
        raise MachineDefinitionError(f"unreachable states: {missing}")
    if stuck := [s for s in STATES if s != FINAL and not (edges[s] - {s})]:
        raise MachineDefinitionError(f"states with no way out: {stuck}")


def _condition(guard: Guard) -> Callable[[Any], bool]:
    def check(event_data: Any) -> bool:
        guard(event_data.kwargs["ctx"])
        return True

    check.__name__ = guard.__name__
    return check


def _build_machine() -> Machine:
    _check_definition()
    table = [
        {
            "trigger": spec.name,
            "source": list(transition.sources),
            "dest": transition.dest,
            "conditions": [_condition(guard) for guard in transition.guards],
        }
        for spec in EVENTS.values()
        for transition in spec.transitions
    ]
    return Machine(
        model=None,
        states=list(STATES),
        transitions=table,
        initial=INITIAL,
        auto_transitions=False,
        send_event=True,
    )


MACHINE = _build_machine()


_ALLOWED: dict[str, list[str]] = {
    state: [
        name
        for name, spec in EVENTS.items()
        if any(state in transition.sources for transition in spec.transitions)
    ]
    for state in STATES
}


def allowed_events(state: str) -> list[str]:
    """Events that have a transition from ``state`` (guards not considered)."""
    return list(_ALLOWED.get(state, ()))


def apply_event(event: str, state: str, ctx: GuardContext) -> str:
    """Fire ``event`` on an agreement in ``state``; return the new state.

    Raises :class:`states.errors.EventRefused` naming the state and the allowed events, or
    the guard's rule.
    """
    if event not in _ALLOWED.get(state, ()):
        allowed = ", ".join(allowed_events(state)) or "none"
        raise EventRefused(f"{event} is not allowed in state {state}; allowed events: {allowed}")
    subject = Subject(state=state)
    if not MACHINE.events[event].trigger(subject, ctx=ctx):
        raise EventRefused(f"{event} is not allowed in state {state}")
    return subject.state


def mermaid() -> str:
    """The declared machine as a mermaid ``stateDiagram-v2``, generated from the table."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL}"]
    for spec in EVENTS.values():
        for transition in spec.transitions:
            for source in transition.sources:
                dest = transition.dest or source
                guard = ", ".join(g.__name__ for g in transition.guards)
                label = f"{spec.name} [{guard}]" if guard else spec.name
                lines.append(f"    {source} --> {dest}: {label}")
    lines.append(f"    {FINAL} --> [*]")
    return "\n".join(lines) + "\n"
