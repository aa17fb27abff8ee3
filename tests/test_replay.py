"""Property: whatever sequence of events is fired, the history is a faithful, replayable record.

Random sequences of (event, role, data, effective time) are fired through the engine API on a few
agreements of cycle_2554, with a virtual clock moving forward and the odd ``tick`` in between;
refusals are expected and ignored, but must leave no trace. Afterwards the chain verifies, each
agreement's entries link (``from`` = the previous ``to``), and replaying its ``event`` entries
through ``states.machine.apply_event`` from ``drafted`` lands exactly on its current state.

Hypothesis runs on SQLite (speed); one longer seeded run goes through PostgreSQL.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from states.machine import EVENTS, OWN, GuardContext, allowed_events, apply_event
from tests.conftest import CYCLE_2554, kpi_set, pg_url
from workflow.config.validate import read_cycle_file
from workflow.rules.clock import VirtualClock
from workflow.rules.errors import BadInput, NotAllowed, NotAuthorised
from workflow.rules.timeutil import DAY_SECONDS, parse_instant
from workflow.store.database import Database
from workflow.store.history import HISTORY, verify
from workflow.store.repository import get_agreement
from workflow.store.views import history_rows
from workflow.usecases.fire import FireRequest, fire
from workflow.usecases.load import load_cycle
from workflow.usecases.tick import tick

T = TypeVar("T")
CYCLE = read_cycle_file(CYCLE_2554)
AGREEMENTS = {"TH-50": "province:TH-50", "TH-51": "province:TH-51", "north-upper-1": None}
OTHER_ROLES = (
    "admin",
    "committee",
    "evaluator",
    "auditor",
    "province:TH-52",
    "group:north-upper-1",
)
DELIVERABLES = [m.id for m in CYCLE.milestones if m.kind == "deliverable"]
START = parse_instant("2010-09-01T09:00")


class Chooser(Protocol):
    """Where the random choices come from: Hypothesis (shrinkable) or a seeded ``Random``."""

    def choice(self, options: Sequence[T]) -> T:
        """One of ``options``."""
        ...

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        ...


class HypothesisChooser:
    """Choices drawn through ``st.data()``, so failing sequences shrink."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def choice(self, options: Sequence[T]) -> T:
        """One of ``options``."""
        return self.data.draw(st.sampled_from(options))

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return self.data.draw(st.integers(low, high))


class SeededChooser:
    """Choices from a seeded generator (a reproducible run outside Hypothesis)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choice(self, options: Sequence[T]) -> T:
        """One of ``options``."""
        return self.rng.choice(list(options))

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return self.rng.randint(low, high)


def _own(agreement: str) -> str:
    return AGREEMENTS[agreement] or f"group:{agreement}"


def _role(event: str, agreement: str, choose: Chooser) -> str:
    """Mostly a role that may fire the event, sometimes any role (→ exit 4)."""
    if choose.integer(0, 5) == 0:
        return choose.choice([*OTHER_ROLES, _own(agreement)])
    roles = sorted(EVENTS[event].roles)
    role = choose.choice(roles)
    return _own(agreement) if role == OWN else role


def _data(event: str, kpis: list[dict[str, Any]] | None, choose: Chooser) -> dict[str, Any] | None:
    """Valid data for the event most of the time; sometimes missing or wrong (→ exit 2)."""
    if choose.integer(0, 7) == 0:
        return choose.choice([None, {}, {"unexpected": True}])
    if event == "propose_kpis":
        return kpi_set(approved=choose.choice([True, True, False]))
    if event == "agree":
        return choose.choice([None, None, kpi_set()])
    if event == "request_change":
        reason = choose.choice(["external", "budget"])
        return {"reason": reason, "explanation": "น้ำท่วม", "kpis": kpi_set()["kpis"]}
    if event == "waive":
        return {"milestone": choose.choice([*DELIVERABLES, "negotiation"]), "reason": "ยกเว้น"}
    if event == "evaluate":
        ids = [kpi["id"] for kpi in kpis or []] or ["1.1"]
        return {"results": {kpi_id: choose.integer(0, 100) for kpi_id in ids}}
    if event == "approve_results":
        return choose.choice([None, {"decision": "อ.ก.พ.ร. 1/2555"}])
    return None


def _counts(db: Database, agreement: str) -> tuple[int, int]:
    """(history entries, agreement version)."""
    with db.read() as conn:
        entries = conn.execute(select(func.count()).select_from(HISTORY)).scalar_one()
        return int(entries), get_agreement(conn, CYCLE.id, agreement).version


def run_sequence(url: str, choose: Chooser, steps: int) -> dict[str, int]:
    """Fire ``steps`` random actions; check every step and the replay at the end.

    Returns how many events each agreement accepted.
    """
    db = Database(url)
    db.create_schema()
    clock = VirtualClock(START)
    load_cycle(db, clock, CYCLE, "test")
    accepted = dict.fromkeys(AGREEMENTS, 0)
    for _ in range(steps):
        clock.set(clock.now() + choose.integer(0, 12 * DAY_SECONDS))
        if choose.integer(0, 9) == 0:
            tick(db, clock, clock.now())
            continue
        agreement = choose.choice(list(AGREEMENTS))
        with db.read() as conn:
            current = get_agreement(conn, CYCLE.id, agreement)
        # mostly an event the state allows (else the walk never gets far), sometimes any
        allowed = allowed_events(current.state)
        event = choose.choice(allowed if allowed and choose.integer(0, 4) else list(EVENTS))
        at = clock.now() - choose.choice([0, 0, 0, DAY_SECONDS, 40 * DAY_SECONDS])
        request = FireRequest(
            agreement,
            event,
            _role(event, agreement, choose),
            at,
            _data(event, current.kpis, choose),
        )
        before = _counts(db, agreement)
        try:
            result = fire(db, clock, request)
        except (BadInput, NotAllowed, NotAuthorised):
            assert _counts(db, agreement) == before, request  # a refusal leaves no trace
            continue
        accepted[agreement] += 1
        entries, version = _counts(db, agreement)
        assert (entries, version) == (before[0] + 1, before[1] + 1), request
        with db.read() as conn:
            last = history_rows(conn, None, agreement, None)[-1]
        assert (last["event"], last["from"], last["to"]) == (event, current.state, result.state)
    check_replay(db, accepted)
    db.dispose()
    return accepted


def _replay_context(entry: dict[str, Any]) -> GuardContext:
    """Guards passed when the event was accepted; replay with a context that says so."""
    return GuardContext(
        at=parse_instant(entry["at"]),
        off_list_kpis=["off-list"] if entry["event"] == "start_negotiation" else [],
        change_open=entry["event"] in ("approve_change", "reject_change"),
        sar12_waived=True,
    )


def check_replay(db: Database, accepted: dict[str, int]) -> None:
    """The chain verifies; entries link; replaying event entries gives the current state."""
    with db.read() as conn:
        verification = verify(conn)
        assert verification.ok, verification.reason
        for agreement, count in accepted.items():
            entries = history_rows(conn, None, agreement, None)
            state = "drafted"
            events = 0
            for entry in entries:
                assert entry["from"] == state, entry  # from = the previous entry's to
                if entry["kind"] == "event":
                    state = apply_event(entry["event"], state, _replay_context(entry))
                    events += 1
                else:
                    assert entry["kind"] == "timer" and entry["event"] == "missed", entry
                assert entry["to"] == state, entry
            assert events == count, agreement
            assert get_agreement(conn, CYCLE.id, agreement).state == state, agreement


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), steps=st.integers(1, 40))
def test_history_replays_to_the_current_state(data: st.DataObject, steps: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        run_sequence(f"sqlite:///{scratch}/replay.db", HypothesisChooser(data), steps)


def test_history_replays_on_postgresql() -> None:
    seed = random.randrange(1 << 30)
    accepted = run_sequence(pg_url(), SeededChooser(seed), 40)
    assert sum(accepted.values()) > 0, seed


def test_a_long_seeded_walk_gets_far() -> None:
    """The generator reaches the end of the machine, so the property covers every state."""
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/walk.db"
        accepted = run_sequence(url, SeededChooser(2554), 150)
        db = Database(url)
        with db.read() as conn:
            reached = {entry["to"] for entry in history_rows(conn, None, None, None) if entry["to"]}
        db.dispose()
    assert sum(accepted.values()) >= 20
    assert {"proposed", "agreed", "signed", "evaluated"} <= reached, reached
