"""Several ``rubrong run`` processes on one PostgreSQL: one leads the timers, all send the mail.

Real service subprocesses (``tests.support.service.Service``) on an accelerated clock share one
PostgreSQL schema and one real aiosmtpd server. The stretch of the year is propose_kpis (due
2010-09-13, 93 provinces and groups): reminders 30 Aug, 6 Sep, 12 Sep, the deadline, the overdue
notice and the escalation; 372 letters. Every process dispatches in small batches (``--batch``),
so the letters of one instant are shared between them; the SMTP server sees each Message-ID
once. With three processes the leader is stopped half-way and another takes the timers over.

The oracle reads what the processes logged (which instant each tick processed, and when, in
virtual time) and lets the contract decide: a notice first processed more than
``catch_up_days`` late is skipped by design, one on time is sent; the 1-day reminders may be
skipped by the deadline that follows them 39 virtual hours (0.5 s) later if a dispatcher had
not sent them yet. Then it checks letter by letter: what the outbox says is sent arrived once,
nothing else arrived.

The helpers and the oracle are in ``tests/support/multiprocess.py``; the advisory leadership
itself is tested in ``tests/test_multiprocess_leadership.py``, the throughput of fires from
several processes in ``tests/test_multiprocess_throughput.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CYCLE_2554, Cli, pg_url
from tests.support.multiprocess import (
    BATCH,
    Sink,
    assert_one_leader_at_a_time,
    check_mail,
    check_timers,
    pending,
    shared_clock,
    wait_any,
    wait_until,
)
from tests.support.service import ESCALATION, R7, Service, lateness, ticked

START = "2010-08-29T08:00"
TUNING = ("--poll", "1", "--leader-retry", "0.5")


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        if service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait()


@pytest.fixture
def pg_loaded(tmp_path: Path) -> Cli:
    """cycle_2554 loaded into a fresh schema of the shared test PostgreSQL."""
    cli = Cli(pg_url(), tmp_path)
    result = cli("load", str(CYCLE_2554))
    assert result.code == 0, result.err
    return cli


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("processes", [2, 3])
def test_processes_share_the_mail_once_with_one_leader(
    pg_loaded: Cli, sink: Sink, services: list[Service], processes: int
) -> None:
    cli = pg_loaded
    clock = shared_clock(START)
    runs = [Service(cli, sink.url, *clock, *TUNING, *BATCH) for _ in range(processes)]
    services.extend(runs)
    wait_any(runs, ticked(R7))
    stopped: list[Service] = []
    if processes == 3:  # the leader goes away (SIGTERM) after the 7-day reminders
        # (a process slow to start on a loaded machine may not have competed for it yet)
        wait_until(lambda: all(run.actions("leader") for run in runs), what="every process")
        (leader,) = [run for run in runs if run.actions("leader")[-1]["role"] == "leader"]
        released = time.monotonic()
        assert leader.stop() == 0
        leader.assert_clean_exit()
        stopped.append(leader)
        rest = [run for run in runs if run is not leader]
        heir = wait_any(rest, lambda line: line["action"] == "leader" and line["role"] == "leader")
        handover = time.monotonic() - released  # reported, not asserted: no speed limits
        print(f"handover to pid {heir.proc.pid} after {handover:.2f} s")
    wait_any(runs, ticked(ESCALATION))
    wait_until(lambda: pending(cli) == 0, what="the outbox to empty")
    for run in runs:
        if run not in stopped:
            assert run.stop() == 0
            run.assert_clean_exit()

    assert_one_leader_at_a_time(runs)
    check_timers(cli, runs)
    sent = check_mail(cli, runs, sink)
    shares = [sum(line["sent"] for line in run.actions("dispatch")) for run in runs]
    assert sum(shares) == sent  # each letter sent by exactly one process, and logged there
    # How the letters fell between the processes, and how many were on time, depends on the
    # machine's load: reported, not asserted (the per-instant oracle above decides).
    late = lateness(runs)
    print(f"{processes} processes: letters sent per process {shares}; "
          f"instants late (virtual s) {sorted(late.values())}")  # fmt: skip
