"""The actions offered on an agreement page are exactly the events ``fire`` would accept.

Table-driven over a few states (each built from scratch by firing events), for every role:
the offered events equal the expected ones; each offered action, fired with fitting data in a
fresh copy of that state, succeeds; every event not offered is refused by ``fire`` (exit 3 or
4; for ``waive`` with nothing left to waive, 3) and writes nothing. On both backends; one case
also through the served page's buttons and links.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from states.machine import EVENTS
from tests.conftest import kpi_set, pg_url
from tests.support.served import prepare, serve
from tests.support.webforms import ROLES, signed_in
from workflow.rules.clock import VirtualClock
from workflow.rules.errors import BadInput, NotAllowed, NotAuthorised
from workflow.rules.roles import parse_role
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.repository import get_agreement, get_cycle, statuses
from workflow.store.tokens import User
from workflow.usecases.fire import FireRequest, fire
from workflow.web import create_app
from workflow.web.actions import Action, allowed_actions, waivable

Step = tuple[str, str, str, dict[str, Any] | None]
ALL_KPIS = {"1.1": 70, "2.1": 80, "3.1": 8, "4.1": 3}
PROPOSE = ("2010-09-10T10:00", "propose_kpis", "province:TH-50", kpi_set())
OFF_LIST = ("2010-09-10T10:00", "propose_kpis", "province:TH-50", kpi_set(approved=False))
AGREE = ("2010-09-20T10:00", "agree", "committee", None)
SIGN = ("2010-11-26T10:00", "sign", "admin", None)
CHANGE = (
    "2011-03-01T10:00",
    "request_change",
    "province:TH-50",
    {"reason": "budget", "explanation": "งบประมาณไม่พอ", **kpi_set()},
)


@dataclass(frozen=True)
class Case:
    """A state reached by ``steps``, looked at ``now``, and what each role is offered there."""

    name: str
    steps: tuple[Step, ...]
    now: str
    offered: dict[str, set[str]]


NOBODY: dict[str, set[str]] = {"th58": set(), "auditor": set()}
CASES = [
    Case(
        "drafted",
        (),
        "2010-09-01T10:00",
        {
            "th50": {"propose_kpis"},
            "opdc": {"waive"},
            "committee": set(),
            "evaluator": set(),
            **NOBODY,
        },
    ),
    Case(
        "proposed off-list",
        (OFF_LIST,),
        "2010-09-15T10:00",
        {"th50": set(), "opdc": {"start_negotiation", "waive"}, "committee": set(), **NOBODY},
    ),
    Case(
        "proposed approved",
        (PROPOSE,),
        "2010-09-15T10:00",
        {"th50": set(), "opdc": {"agree", "waive"}, "committee": {"agree"}, **NOBODY},
    ),
    Case(
        "negotiating",
        (OFF_LIST, ("2010-09-15T10:00", "start_negotiation", "admin", None)),
        "2010-09-27T10:00",
        {"opdc": {"agree", "waive"}, "committee": {"agree"}, "th50": set(), **NOBODY},
    ),
    Case(
        "signed, change open",
        (PROPOSE, AGREE, SIGN, CHANGE),
        "2011-03-02T10:00",
        {
            "th50": {
                "publish",
                "submit_kpi_template",
                "submit_sar6",
                "submit_esar9",
                "submit_sar12",
            },
            "opdc": {"approve_change", "reject_change", "waive"},
            "evaluator": set(),
            **NOBODY,
        },
    ),
    Case(
        "signed, before the cutoff",
        (PROPOSE, AGREE, SIGN),
        "2011-03-31T23:00",
        {
            "th50": {
                "publish",
                "submit_kpi_template",
                "request_change",
                "submit_sar6",
                "submit_esar9",
                "submit_sar12",
            }
        },
    ),
    Case(
        "signed, after the cutoff",
        (PROPOSE, AGREE, SIGN),
        "2011-04-01T00:00",
        {
            "th50": {
                "publish",
                "submit_kpi_template",
                "submit_sar6",
                "submit_esar9",
                "submit_sar12",
            },
            "evaluator": set(),
        },
    ),
    Case(
        "sar12 waived",
        (
            PROPOSE,
            AGREE,
            SIGN,
            ("2011-05-01T10:00", "waive", "admin", {"milestone": "sar12", "reason": "น้ำท่วม"}),
        ),
        "2011-05-02T10:00",
        {
            "evaluator": {"evaluate"},
            "th50": {
                "publish",
                "submit_kpi_template",
                "submit_sar6",
                "submit_esar9",
                "submit_sar12",
            },
        },
    ),
    Case(
        "evaluated",
        (
            PROPOSE,
            AGREE,
            SIGN,
            ("2011-10-20T10:00", "submit_sar12", "province:TH-50", None),
            ("2011-12-10T10:00", "evaluate", "evaluator", {"results": ALL_KPIS}),
        ),
        "2011-12-11T10:00",
        {
            "opdc": {"approve_results", "waive"},
            "evaluator": set(),
            "th50": {"publish"},
            "committee": set(),
            **NOBODY,
        },
    ),
]


class Backend:
    """Fresh databases of one kind: a SQLite file each, or a PostgreSQL schema each."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        self.tmp = tmp

    def new_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp / f'{uuid.uuid4().hex[:8]}.db'}"
        return pg_url()


def build(url: str, case: Case) -> VirtualClock:
    """The case's state in a new database; the clock at the case's ``now``."""
    clock = VirtualClock(parse_instant("2010-08-01"))
    prepare(url, clock, {})
    db = Database(url)
    for when, event, role, data in case.steps:
        clock.set(parse_instant(when))
        fire(db, clock, FireRequest("TH-50", event, role, data=data))
    clock.set(parse_instant(case.now))
    db.dispose()
    return clock


def person(who: str) -> User:
    return User(id=0, name=who, role=parse_role(ROLES[who]))


def offered(url: str, who: str, at: int) -> list[Action]:
    db = Database(url)
    with db.read() as conn:
        agreement = get_agreement(conn, get_cycle(conn).id, "TH-50")
        found = allowed_actions(conn, agreement, person(who), at=at)
    db.dispose()
    return found


def data_for(action: Action, url: str) -> dict[str, Any] | None:
    """Fitting data for an offered action (its form's kind of data)."""
    if action.event == "waive":
        db = Database(url)
        with db.read() as conn:
            cycle = get_cycle(conn)
            agreement = get_agreement(conn, cycle.id, "TH-50")
            targets = waivable(agreement, cycle.settings.milestones, statuses(conn, agreement.pk))
        db.dispose()
        return {"milestone": targets[0], "reason": "ทดสอบ"}
    fitting: dict[str, Callable[[], dict[str, Any] | None]] = {
        "propose_kpis": kpi_set,
        "request_change": lambda: dict(CHANGE[3] or {}),
        "submit_sar6": lambda: {"card": [{"kpi": "1.1", "result": 70}]},
        "submit_esar9": lambda: {"card": [{"kpi": "2.1", "result": 80}]},
        "submit_sar12": lambda: {"card": [{"kpi": "3.1", "result": 8}]},
        "evaluate": lambda: {"results": ALL_KPIS},
        "agree": lambda: kpi_set() if action.kind == "link" else None,
    }
    return fitting.get(action.event, lambda: None)()


def history_length(url: str) -> int:
    db = Database(url)
    with db.read() as conn:
        count = len(conn.exec_driver_sql("SELECT seq FROM history").fetchall())
    db.dispose()
    return count


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_offered_actions_are_exactly_what_fire_accepts(
    kind: str, case: Case, tmp_path: Path
) -> None:
    backend = Backend(kind, tmp_path)
    url = backend.new_url()
    clock = build(url, case)
    at = clock.now()
    for who, expected in case.offered.items():
        actions = offered(url, who, at)
        assert {action.event for action in actions} == expected, (case.name, who)
        for action in actions:  # each offered action succeeds, in a fresh copy of the state
            copy = backend.new_url()
            copy_clock = build(copy, case)
            db = Database(copy)
            request = FireRequest("TH-50", action.event, ROLES[who], data=data_for(action, copy))
            fire(db, copy_clock, request)
            db.dispose()
        db = Database(url)
        before = history_length(url)
        for event in sorted(set(EVENTS) - expected):  # everything else is refused
            tries: list[dict[str, Any] | None] = [None]
            if event == "waive":
                tries = [{"milestone": m, "reason": "x"} for m in ("sar6", "sar12", "sign")]
            for data in tries:
                with pytest.raises((NotAuthorised, NotAllowed, BadInput)) as refused:
                    fire(db, clock, FireRequest("TH-50", event, ROLES[who], data=data))
                if event != "waive":
                    assert isinstance(refused.value, NotAuthorised | NotAllowed), (who, event)
        db.dispose()
        assert history_length(url) == before


def test_the_page_shows_exactly_the_offered_buttons(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rubrong.db'}"
    case = CASES[5]  # signed, before the cutoff
    clock = VirtualClock(parse_instant("2010-08-01"))
    tokens = prepare(url, clock, {"th50": ROLES["th50"], "opdc": "admin", "th58": ROLES["th58"]})
    db = Database(url)
    for when, event, role, data in case.steps:
        clock.set(parse_instant(when))
        fire(db, clock, FireRequest("TH-50", event, role, data=data))
    db.dispose()
    clock.set(parse_instant(case.now))
    with serve(create_app(url, clock)) as base:
        shown = {}
        for who in ("th50", "opdc", "th58"):
            client: httpx.Client = signed_in(base, tokens[who])
            page = client.get("/agreements/TH-50").text
            shown[who] = set(re.findall(r'id="action-([a-z0-9_]+)"', page))
            assert ('id="no-actions"' in page) == (not shown[who])
    assert shown["th50"] == case.offered["th50"]
    assert shown["opdc"] == {"waive"} and shown["th58"] == set()
