"""``rubrong run``: real service subprocesses on an accelerated clock, a real SMTP server.

propose_kpis (due 2010-09-13, 93 provinces and groups): reminders 30 Aug, 6 Sep, 12 Sep at 09:00,
deadline 14 Sep 00:00, overdue notice 14 Sep and escalation 20 Sep at 09:00. At 150,000× a day
is 0.58 wall seconds. A loaded machine makes wakes late in virtual time too, and a notice first
processed more than ``catch_up_days`` (3 days, 1.7 s here) late is skipped by design, so the
oracle does not guess: each ``tick`` log line says when it processed which instants, so the
contract decides what was sent (to arrive once) or skipped. Where a test needs "not past this
point", the virtual clock stops there (``run --clock-stop``) rather than racing the machine.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import CYCLE_2554, Cli
from tests.support.service import (
    CATCH_UP,
    DEADLINE,
    ESCALATION,
    INSTANTS,
    OVERDUE,
    R1,
    R7,
    R14,
    Service,
    Sink,
    expected,
    lateness,
    ticked,
)
from workflow.cli import run as run_cli

SPEED = "150000"
WAIT = 90  # wall seconds to wait for a condition: generous, for a loaded machine


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


def query(cli: Cli, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(cli.db_url.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql).fetchall()


def organisations(cli: Cli) -> list[tuple[str, str, str]]:
    """(id, email, supervisor_email) of every organisation of cycle 2554 (SQLite)."""
    rows = query(cli, "SELECT id, email, supervisor_email FROM organisations")
    assert len(rows) == 93  # 75 provinces + 18 groups: every one proposes KPIs
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def done(cli: Cli) -> list[str]:
    """The timer instants recorded as processed, in time order, as the log names them."""
    rows = query(cli, "SELECT cycle_id, key FROM timers_done ORDER BY at")
    return [f"{cycle}/{key}" for cycle, key in rows]


def sent_by_contract(cli: Cli, runs: list[Service]) -> set[str]:
    """Check each processed notice instant is all sent or all skipped as the catch-up rule
    says; return the Message-IDs that must have arrived."""
    must_arrive: set[str] = set()
    statuses = dict(query(cli, "SELECT message_id, status FROM outbox"))
    for key, late in lateness(runs).items():
        if INSTANTS[key][1] is None:
            continue
        ids = expected(cli, key)
        want = "skipped" if late > CATCH_UP else "sent"
        assert {statuses[mid] for mid in ids} == {want}, (key, late)
        if want == "sent":
            must_arrive |= ids
    return must_arrive


@pytest.fixture
def loaded_sqlite(sqlite_cli: Cli) -> Cli:
    result = sqlite_cli("load", str(CYCLE_2554))
    assert result.code == 0, result.err
    return sqlite_cli


def test_reminders_then_sigterm_then_restart_catches_up_once(
    loaded_sqlite: Cli, sink: Sink, services: list[Service]
) -> None:
    cli = loaded_sqlite
    # The first run's clock stops on 12 Sep at noon: after the 1-day reminders (processed at
    # most 3 hours late, so sent), before the deadline (never processed by this run).
    first = Service(cli, sink.url, "--clock-start", "2010-08-29T08:00", "--speed", SPEED,
                    "--clock-stop", "2010-09-12T12:00")  # fmt: skip
    services.append(first)
    first.wait_for(ticked(R1), WAIT)
    # SIGTERM while the 12 Sep job may still be sending: it finishes, and nothing starts after.
    assert first.stop() == 0
    first.assert_clean_exit()
    assert first.processed() == [R14, R7, R1]
    assert done(cli) == first.processed()
    arrived = sent_by_contract(cli, [first])
    assert expected(cli, R1) <= arrived  # all 93 went out before the process stopped
    assert sink.ids() == Counter(dict.fromkeys(arrived, 1))  # each exactly once

    # Down over the deadline (14 Sep 00:00) and the overdue notice (14 Sep 09:00, 23 hours
    # before the restart). The second run's clock stands still at 15 Sep 08:00: its catch-up
    # processes exactly those two, the overdue notice 23 hours late (within catch_up_days).
    second = Service(cli, sink.url, "--clock-start", "2010-09-15T08:00",
                     "--clock-stop", "2010-09-15T08:00")  # fmt: skip
    services.append(second)
    second.wait_for(ticked(OVERDUE), WAIT)
    wait_until_sent(cli)
    assert second.stop() == 0
    second.assert_clean_exit()
    assert second.actions("tick")[0]["processed"] == [DEADLINE, OVERDUE]
    assert second.processed() == [DEADLINE, OVERDUE]
    late = lateness([first, second])
    assert late[OVERDUE] == 23 * 3600
    # The escalation (20 Sep 09:00) at its own time, after one more restart.
    third = Service(cli, sink.url, "--clock-start", "2010-09-20T08:00", "--speed", SPEED,
                    "--clock-stop", "2010-09-20T10:00")  # fmt: skip
    services.append(third)
    third.wait_for(ticked(ESCALATION), WAIT)
    wait_until_sent(cli)
    assert third.stop() == 0
    third.assert_clean_exit()
    runs = [first, second, third]
    assert third.processed() == [ESCALATION]
    assert done(cli) == list(INSTANTS)

    arrived = sent_by_contract(cli, runs)
    assert sink.ids() == Counter(dict.fromkeys(arrived, 1))
    assert expected(cli, OVERDUE) | expected(cli, ESCALATION) <= arrived
    to, orgs = dict(sink.received), organisations(cli)
    assert {to[mid] for mid in expected(cli, OVERDUE)} == {(email,) for _, email, _ in orgs}
    # An escalation goes to the supervisor with the organisation's own address copied.
    escalated = {(s, e) for _, e, s in orgs}
    assert {to[mid] for mid in expected(cli, ESCALATION)} == escalated
    assert query(cli, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'") == [(0,)]
    missed = query(cli, "SELECT COUNT(*) FROM history WHERE kind = 'timer' AND event = 'missed'")
    assert missed == [(93,)]
    assert cli("verify").code == 0


def wait_until_sent(cli: Cli, timeout: float = WAIT) -> None:
    """Wait until no outbox row is pending (SQLite)."""
    end = time.monotonic() + timeout
    while query(cli, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'") != [(0,)]:
        if time.monotonic() > end:
            pytest.fail("the outbox did not empty")
        time.sleep(0.1)


def test_sigkill_mid_dispatch_then_restart_sends_everything_once_per_instant(
    loaded_sqlite: Cli, services: list[Service]
) -> None:
    cli = loaded_sqlite
    sink = Sink(kill_after=10)
    sink.controller.start()
    try:
        # the clock stops before the 7-day reminders (only the 14-day ones are processed),
        # less than 3 days after the 14-day ones (so they are sent, not skipped as too old)
        first = Service(cli, sink.url, "--clock-start", "2010-08-29T08:00", "--speed", SPEED,
                        "--clock-stop", "2010-09-02T08:00")  # fmt: skip
        services.append(first)
        sink.victim = first.proc.pid
        assert sink.killed.wait(WAIT), "".join(first.raw)
        assert first.finish() == -signal.SIGKILL  # reaped: its pid no longer exists
        before_kill = sink.ids()
        assert 10 <= len(before_kill) < 93
        assert first.processed() == [R14] and done(cli) == [R14]
        leased = query(cli, "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND lease_until")
        assert leased == [(93,)]  # the whole batch was claimed, none recorded as sent

        # Restarted after 30 Aug: the pending rows are retries, not subject to catch-up.
        second = Service(cli, sink.url, "--clock-start", "2010-09-02T12:00", "--speed", SPEED,
                         "--clock-stop", "2010-09-06T12:00")  # fmt: skip
        services.append(second)
        second.wait_for(ticked(R7), WAIT)
        assert second.stop() == 0
    finally:
        sink.controller.stop()
    second.assert_clean_exit()
    assert [line["rows"] for line in second.actions("release_leases")] == [93]
    assert second.processed() == [R7]  # the 14-day reminders were not processed again
    assert done(cli) == first.processed() + second.processed()

    received = sink.ids()
    r14 = expected(cli, R14)
    arrived = sent_by_contract(cli, [first, second])
    assert r14 | expected(cli, R7) <= arrived
    assert set(received) == arrived
    # A mail the server took before the kill comes again, with the same Message-ID; once.
    assert all(received[mid] == 1 + before_kill[mid] for mid in r14)
    assert all(received[mid] == 1 for mid in arrived - r14)
    assert query(cli, "SELECT COUNT(*) FROM outbox WHERE status = 'pending'") == [(0,)]


def test_once_catches_up_and_skips_what_is_too_old(loaded: Cli, sink: Sink) -> None:
    """Both backends: --once at 20 Sep 10:00 processes all six instants in one tick."""
    args = ("--smtp", sink.url, "run", "--once", "--clock-start", "2010-09-20T10:00")
    result = loaded.subprocess(*args)
    assert result.code == 0, result.err
    lines = [json.loads(line) for line in result.err.splitlines()]
    assert [line["action"] for line in lines] == ["start", "tick", "dispatch", "stopped"]
    assert lines[1]["processed"] == list(INSTANTS)
    # Only the escalation (1 hour old) is within catch_up_days; the rest is recorded skipped.
    assert sink.ids() == Counter(dict.fromkeys(expected(loaded, ESCALATION), 1))
    rows = Counter((row["kind"], row["status"]) for row in loaded("outbox", "--json").json())
    assert rows == {
        ("escalation", "sent"): 93,
        ("overdue", "skipped"): 93,
        ("reminder", "skipped"): 279,
    }


def test_bad_options_exit_2(sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for args, message in [
        (("run", "--web", "nowhere"), "--web: expected HOST:PORT"),
        (("run", "--speed", "0"), "--speed"),
        (("run", "--clock-start", "yesterday"), "--clock-start"),
        (("run", "--poll", "0"), "--poll"),
    ]:
        result = sqlite_cli(*args)
        assert result.code == 2 and message in result.err, result
    monkeypatch.setattr(run_cli, "WEB_MODULE", "workflow.no_such_web_for_tests.app")
    result = sqlite_cli("run", "--web", "127.0.0.1:8000")
    assert result.code == 2
    assert "web dashboard is not available" in result.err and "Traceback" not in result.err


def test_web_serves_in_a_thread_and_stops_on_sigterm(
    loaded_sqlite: Cli, sink: Sink, services: list[Service]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    args = ("--web", f"127.0.0.1:{port}", "--clock-start", "2010-08-01", "--speed", "1")
    service = Service(loaded_sqlite, sink.url, *args)
    services.append(service)
    service.wait_for(lambda line: line["action"] == "web")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=10) as answer:
        assert answer.status == 200 and "/api/v1/agreements" in json.load(answer)["paths"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/agreements", timeout=10)
    assert refused.value.code == 401
    assert service.stop() == 0
    service.assert_clean_exit()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2)


def test_web_port_taken_exits_1(loaded_sqlite: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        result = loaded_sqlite.subprocess("run", "--web", f"127.0.0.1:{port}", timeout=60)
    assert result.code == 1, result.err
    assert result.err.splitlines()[-1] == f"rubrong: --web: cannot serve on 127.0.0.1:{port}"
