"""The machine's refusals cross the engine's boundary unchanged: ``states`` raises its own
``EventRefused`` (no exit codes there), ``workflow.usecases.fire`` turns it into ``NotAllowed``, and
the CLI prints the machine's words with exit 3."""

from __future__ import annotations

import json

import pytest

from states.errors import EventRefused, MachineError
from states.machine import GuardContext, apply_event
from tests.conftest import CYCLE_2554, Cli, kpi_set
from workflow.rules.errors import NotAllowed, RubrongError


def test_the_machine_raises_its_own_error() -> None:
    """``apply_event`` refuses with ``states.errors``, not with the engine's exceptions."""
    with pytest.raises(EventRefused) as refused:
        apply_event("sign", "drafted", GuardContext(at=0))
    assert isinstance(refused.value, MachineError)
    assert not isinstance(refused.value, RubrongError)
    assert refused.value.message == (
        "sign is not allowed in state drafted; allowed events: propose_kpis, waive"
    )


def test_a_guard_refuses_with_its_rule() -> None:
    """A guard's rule is the refusal's message."""
    with pytest.raises(EventRefused, match="already published"):
        apply_event("publish", "signed", GuardContext(at=0, published=True))


def test_the_cli_prints_the_refusal_with_exit_3(sqlite_cli: Cli) -> None:
    """State and guard refusals: exit 3 (``NotAllowed``), the machine's message on stderr."""
    assert NotAllowed.exit_code == 3
    assert sqlite_cli("load", str(CYCLE_2554)).code == 0
    state = sqlite_cli("fire", "TH-50", "sign", "--as", "admin", "--at", "2010-09-01")
    assert state.code == 3, state.err
    assert "sign is not allowed in state drafted; allowed events: propose_kpis, waive" in state.err
    kpis = json.dumps(kpi_set(), ensure_ascii=False)
    fire = ("fire", "TH-50", "propose_kpis", "--as", "province:TH-50", "--at", "2010-09-10")
    proposed = sqlite_cli(*fire, "--data", kpis)
    assert proposed.code == 0, proposed.err
    guard = sqlite_cli("fire", "TH-50", "start_negotiation", "--as", "admin", "--at", "2010-09-11")
    assert guard.code == 3, guard.err
    assert "every proposed KPI is on the approved list: agree directly" in guard.err
