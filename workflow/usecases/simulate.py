"""``simulate``: the whole fiscal year on a virtual clock, through the real engine.

The timeline is the scenario's actions and every timer instant of the cycle, in time order
(actions first at equal times, actions in file order). At each point in time the actions are
fired, then ``tick`` processes every instant up to that time, then due mail is dispatched,
all with the same virtual clock, so ``recorded_at`` and the mail ``Date`` are virtual too.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text

from notifications.mailers import Mailer
from workflow.rules.clock import VirtualClock
from workflow.rules.errors import RubrongError
from workflow.rules.scenario import Action
from workflow.store.database import Database
from workflow.store.outbox import OUTBOX
from workflow.store.repository import get_cycle, list_agreements
from workflow.usecases.dispatch import dispatch
from workflow.usecases.fire import FireRequest, fire
from workflow.usecases.tick import instants, tick


@dataclass
class SimulationResult:
    """What a simulated year did."""

    events: int = 0
    refused: int = 0
    refusals: list[str] = field(default_factory=list)
    notifications: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    failed: int = 0
    wall_seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The ``simulate --json`` object (CONTRACT.md) plus a few extra keys."""
        return {
            "events": self.events,
            "refused": self.refused,
            "notifications": self.notifications,
            "wall_seconds": round(self.wall_seconds, 3),
            "sent": self.sent,
            "failed": self.failed,
        }


def simulate(
    db: Database,
    cycle_id: str,
    actions: list[Action],
    mailer: Mailer | None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Run the timeline; ``mailer`` None means enqueue only (``--no-send``)."""
    with db.read() as conn:
        cycle = get_cycle(conn, cycle_id)
        parties = {a.org_id: a.kind for a in list_agreements(conn, cycle.id, None)}
    points: dict[int, list[Action]] = {}
    for action in actions:
        points.setdefault(action.at, []).append(action)
    for instant in instants(cycle.settings):
        points.setdefault(instant.at, [])
    timeline = sorted(points)
    clock = VirtualClock(timeline[0] if timeline else 0)
    result = SimulationResult()
    started = time.perf_counter()
    for index, moment in enumerate(timeline):
        clock.set(moment)
        for action in points[moment]:  # actions first, in file order
            _apply(db, clock, cycle.id, parties, action, result)
        tick(db, clock, moment)
        if mailer is not None:
            report = dispatch(db, mailer, moment)
            result.sent += report.sent
            result.failed += len(report.failed)
        if progress is not None:
            progress(index + 1, len(timeline))
    result.wall_seconds = time.perf_counter() - started
    result.notifications = _counts(db, cycle.id)
    return result


def _apply(
    db: Database,
    clock: VirtualClock,
    cycle_id: str,
    parties: dict[str, str],
    action: Action,
    result: SimulationResult,
) -> None:
    role = action.role
    if role == "own":
        kind = parties.get(action.agreement, "province")
        role = f"{kind}:{action.agreement}"
    try:
        fire(
            db,
            clock,
            FireRequest(action.agreement, action.event, role, action.at, action.data, cycle_id),
        )
        result.events += 1
    except RubrongError as refusal:
        result.refused += 1
        result.refusals.append(
            f"line {action.line}: {action.agreement} {action.event}: {refusal.message}"
        )


def _counts(db: Database, cycle_id: str) -> dict[str, int]:
    with db.read() as conn:
        rows = conn.execute(
            select(OUTBOX.c.kind, text("count(*)"))
            .where(OUTBOX.c.cycle_id == cycle_id)
            .group_by(OUTBOX.c.kind)
        )
        return dict(Counter({str(kind): int(count) for kind, count in rows}))
