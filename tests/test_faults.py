"""Faults, each provoked on purpose, against a PRIVATE PostgreSQL (``tests.support.postgres``).

Real ``rubrong run`` processes on an accelerated clock, a real SMTP server (``Sink``), and a
PostgreSQL server of the test session's own on a spare port, so that it can be restarted; the
shared one at 127.0.0.1:5432 is never touched. Each test gets a database of its own.

- the leader is SIGKILLed in the middle of a deadline sweep (the test holds the history chain
  lock, so the sweep is surely inside its transaction, having claimed the instant): another
  process takes over, the instant is processed once, every agreement gets one ``missed`` entry;
- a dispatcher is SIGKILLed right after the SMTP server accepted a letter, before it could record
  it as sent: the survivor sends that letter again with the same Message-ID, and nothing else
  twice;
- PostgreSQL is restarted mid-run: the services reconnect, a leader takes the lock again, the
  rest of the stretch is delivered once;
- the SMTP server answers 4xx, then 5xx: retried, then ``failed`` with the reason, and one
  ``alert`` to the administrators;
- the clock jumps backwards (the services restart with an earlier clock): nothing is re-sent.

None of them races the accelerated clock. Where a test needs "not yet" it holds a condition
instead: the history chain lock (a deadline sweep cannot commit while the test holds it) or a
virtual clock that stops (``run --clock-stop``: an instant after the stop is never processed,
and one before it is processed at most as late as the stop, so a notice whose instant is within
``catch_up_days`` of the stop is sent however slow the machine). Waits are on conditions, with
generous deadlines.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import psycopg
import pytest

from bench.cyclegen import generate_cycle
from tests.conftest import CYCLE_2554, Cli
from tests.support.multiprocess import (
    BATCH,
    Letter,
    Sink,
    check_mail,
    check_timers,
    pending,
    shared_clock,
    stamp,
    timers,
    wait_any,
    wait_until,
)
from tests.support.postgres import PrivatePostgres, pg, private_pg  # noqa: F401  (fixtures)
from tests.support.service import (
    DEADLINE,
    ESCALATION,
    OVERDUE,
    R1,
    R7,
    R14,
    Service,
    expected,
    ticked,
)
from workflow.store.database import CHAIN_LOCK_ID

SPEED = "300000"
FAST = ("--poll", "1", "--leader-retry", "0.5", *BATCH)
WAIT = 90  # wall seconds: generous, for a loaded machine; a passing run waits far less
OPDC = "opdc@opdc.rubrong.example"


@pytest.fixture
def loaded(pg: PrivatePostgres, tmp_path: Path) -> Cli:  # noqa: F811
    """cycle_2554 loaded into a new database of the private server."""
    cli = Cli(pg.database(), tmp_path)
    result = cli("load", str(CYCLE_2554))
    assert result.code == 0, result.err
    return cli


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


def start(
    cli: Cli,
    sink: Sink,
    services: list[Service],
    count: int,
    clock: str,
    speed: str = SPEED,
    stop: str | None = None,
) -> list[Service]:
    """``count`` service processes on the same database and virtual clock (that stops at
    ``stop`` when given)."""
    args = (*shared_clock(clock, speed), *(("--clock-stop", stop) if stop else ()), *FAST)
    runs = [Service(cli, sink.url, *args) for _ in range(count)]
    services.extend(runs)
    return runs


def leader_of(runs: list[Service]) -> Service:
    """The process whose latest leadership line says it leads (waits for one)."""
    wait_any(runs, lambda line: line["action"] == "leader" and line["role"] == "leader", WAIT)
    (leader,) = [
        run
        for run in runs
        if run.actions("leader") and run.actions("leader")[-1]["role"] == "leader"
    ]
    return leader


def libpq(cli: Cli) -> str:
    """The test database's URL for psycopg itself."""
    return cli.db_url.replace("postgresql+psycopg://", "postgresql://")


def stop_all(runs: list[Service]) -> None:
    """SIGTERM every live process; each exits 0 with a clean log."""
    for run in runs:
        if run.proc.poll() is None:
            assert run.stop() == 0
            run.assert_clean_exit()


# --------------------------------------------------------------------------- leader killed


def test_leader_killed_during_a_deadline_sweep(
    loaded: Cli, sink: Sink, services: list[Service]
) -> None:
    cli = loaded
    with psycopg.connect(libpq(cli)) as chain:
        # The test holds the chain lock: the leader's sweep of the deadline claims the instant
        # (timers_done) and then waits for this lock, inside its transaction.
        chain.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK_ID,))
        # 30 min past the deadline; the clock stops an hour after the escalation, so that is
        # sent however late the heir gets to it
        runs = start(cli, sink, services, 2, "2010-09-14T00:30", stop="2010-09-20T10:00")
        leader = leader_of(runs)
        wait_until(lambda: sweep_waiting(cli), WAIT, what="the leader's sweep to wait for the lock")
        leader.proc.send_signal(signal.SIGKILL)
        assert leader.finish() == -signal.SIGKILL
        (heir,) = [run for run in runs if run is not leader]
        heir.wait_for(lambda line: line["action"] == "leader" and line["role"] == "leader", WAIT)
        assert not any(DEADLINE in key for key in leader.processed())
        assert DEADLINE not in timers(cli)  # the killed sweep's claim is not committed
        chain.rollback()  # lets the killed sweep's backend end (rolled back) and the heir on
    heir.wait_for(ticked(DEADLINE), WAIT)
    heir.wait_for(ticked(ESCALATION), WAIT)
    wait_until(lambda: pending(cli) == 0, WAIT, what="the outbox to empty")
    stop_all([heir])

    check_timers(cli, runs, killed=True)  # the deadline once; 93 missed entries, one each
    assert DEADLINE in heir.processed()
    check_mail(cli, runs, sink)
    assert expected(cli, ESCALATION) <= set(sink.ids())  # the heir sends too


def sweep_waiting(cli: Cli) -> bool:
    """True while a backend of the test database waits for an advisory lock."""
    with psycopg.connect(libpq(cli)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()"
        ).fetchone()
    return bool(row and row[0])


# --------------------------------------------------------------------------- dispatcher killed


def test_dispatcher_killed_between_smtp_accept_and_marking_sent(
    loaded: Cli, sink: Sink, services: list[Service]
) -> None:
    cli = loaded
    # The clock stops before the deadline, which would skip the reminders still pending (those
    # the victim had claimed among them) if it came before the survivor freed and sent them.
    runs = start(cli, sink, services, 2, "2010-08-29T08:00", stop="2010-09-12T12:00")
    sink.owners = [run.proc.pid for run in runs]
    killed = threading.Event()
    victim: list[Letter] = []

    def kill(letter: Letter) -> None:  # in the SMTP server's loop, right before its 250
        if len(sink.received) >= 25 and not victim and letter.owner is not None:
            victim.append(letter)
            os.kill(letter.owner, signal.SIGKILL)
            killed.set()

    sink.on_accept = kill
    assert killed.wait(WAIT), "no letter arrived"
    (dead,) = [run for run in runs if run.proc.pid == victim[0].owner]
    assert dead.finish() == -signal.SIGKILL  # reaped: its leases are now a dead process's
    (survivor,) = [run for run in runs if run is not dead]
    wait_any(runs, ticked(R7), WAIT)
    wait_until(lambda: pending(cli) == 0, WAIT, what="the outbox to empty")
    stop_all([survivor])

    arrivals: dict[str, list[Letter]] = {}
    for letter in sink.received:
        arrivals.setdefault(letter.message_id, []).append(letter)
    twice = frozenset(mid for mid, letters in arrivals.items() if len(letters) > 1)
    assert victim[0].message_id in twice  # accepted, never recorded: sent again
    for mid in twice:  # first from the victim, then from the survivor
        first, second = arrivals[mid]
        assert second.owner == survivor.proc.pid and victim[0].at < second.at, mid
        # sent by the victim before it died; or already on the wire then, and read by the
        # server after its death (the sending socket has no owner any more)
        assert first.owner == dead.proc.pid or (first.owner is None and first.at >= victim[0].at)
    released = sum(line["rows"] for line in survivor.actions("release_leases"))
    assert released >= len(twice)
    check_mail(cli, runs, sink, twice=twice)
    print(f"killed pid {dead.proc.pid} after the 25th letter; {released} leases released, "
          f"{len(twice)} letters sent twice (same Message-ID)")  # fmt: skip


# --------------------------------------------------------------------------- PostgreSQL restarted


def test_postgres_restarted_mid_run(
    pg: PrivatePostgres,  # noqa: F811
    loaded: Cli,
    sink: Sink,
    services: list[Service],
) -> None:
    cli = loaded
    chain = psycopg.connect(libpq(cli))
    try:
        # The test holds the chain lock: the reminders go out, the deadline sweep waits. The
        # clock stops an hour after the escalation: it is processed after the restart however
        # long that takes, at most an hour late, so it is sent.
        chain.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK_ID,))
        runs = start(cli, sink, services, 2, "2010-08-29T08:00", stop="2010-09-20T10:00")
        wait_until(lambda: sweep_waiting(cli), WAIT, what="the deadline sweep to wait")
        wait_until(lambda: pending(cli) == 0, WAIT, what="the reminders to go out")
        assert set(timers(cli)) == {R14, R7, R1}  # mid-run: the rest comes after the restart
        before = sink.ids()
        restarted = time.time()
        # every session ends: the leader's lock, the pools' connections, the waiting sweep
        # (rolled back), and the test's own lock
        pg.stop("fast")
    finally:
        chain.close()  # (its session is gone already)
    pg.start()
    wait_until(lambda: ESCALATION in timers(cli), WAIT, what="the escalation after the restart")
    wait_until(lambda: pending(cli) == 0, WAIT, what="the outbox to empty")
    stop_all(runs)

    errors = [line for run in runs for line in run.actions("error")]
    assert errors, "nobody noticed the database going away"
    leads = [
        line
        for run in runs
        for line in run.actions("leader")
        if line["role"] == "leader" and stamp(line) > restarted
    ]
    assert leads, "nobody took the lock again after the restart"
    lost = [line for run in runs for line in run.actions("leader") if line["role"] == "follower"]
    assert any("session lost" in line.get("reason", "") for line in lost), lost
    # The deadline, the overdue notice and the escalation were processed after the restart
    # (not before: checked above), each once, by whoever led then; 93 missed entries. (The
    # leader may have processed the 1-day reminders in the tick the restart cut short: then
    # they are committed but not logged.)
    check_timers(cli, runs, killed=True)
    assert {DEADLINE, OVERDUE, ESCALATION} <= {key for run in runs for key in run.processed()}
    # Nothing was in flight at the restart (the outbox was empty): nothing arrives twice,
    # nothing sent before comes again, and the escalation letters arrive after the restart.
    sent = check_mail(cli, runs, sink)
    assert Counter({mid: n for mid, n in sink.ids().items() if mid in before}) == before
    assert expected(cli, ESCALATION) <= set(sink.ids()) - set(before)
    print(f"restart: {len(errors)} errors logged, {sent} letters delivered")


# --------------------------------------------------------------------------- SMTP 4xx then 5xx


def test_smtp_temporary_then_permanent_refusal(
    pg: PrivatePostgres,  # noqa: F811
    tmp_path: Path,
    sink: Sink,
    services: list[Service],
) -> None:
    cli = Cli(pg.database(), tmp_path)
    text = generate_cycle(cycle_id="2554", groups=1, provinces_per_group=2, deadline_policy="keep")
    (tmp_path / "small.toml").write_text(text, encoding="utf-8")
    assert cli("load", str(tmp_path / "small.toml")).code == 0
    doomed = "governor@th-12.rubrong.example"

    def reply(mid: str, to: tuple[str, ...], attempt: int) -> str | None:
        if OPDC in to:
            return None  # the administrators' alerts go through
        if to == (doomed,):
            return "451 4.3.0 mailbox busy" if attempt < 3 else "550 5.1.1 mailbox closed"
        return "451 4.3.0 try again later" if attempt == 1 else None

    sink.reply = reply
    # 30 s before the reminders, slowly enough (a minute is 20 ms) that the next ones (a week
    # later) stay far away while the retries (1 and 2 minutes later) go on
    runs = start(cli, sink, services, 2, "2010-08-30T08:59:30", speed="3000")
    wait_until(lambda: alert_sent(cli), WAIT, what="the alert to go out")
    stop_all(runs)

    rows = cli("outbox", "--json").json()
    (failed,) = [row for row in rows if row["status"] == "failed"]
    assert failed["to"] == doomed and failed["attempts"] == 3
    assert "550" in failed["last_error"] and "mailbox closed" in failed["last_error"]
    (alert,) = [row for row in rows if row["kind"] == "alert"]
    assert (alert["to"], alert["agreement"], alert["status"]) == (OPDC, None, "sent")
    others = [row for row in rows if row["kind"] == "reminder" and row is not failed]
    assert len(others) == 2 and {(r["status"], r["attempts"]) for r in others} == {("sent", 2)}
    refusals = Counter(answer[:3] for _, answer in sink.refused)
    assert refusals == {"451": 2 + 2, "550": 1}
    assert sink.ids() == Counter({row["message_id"]: 1 for row in [*others, alert]})
    (letter,) = [item for item in sink.received if item.to == (OPDC,)]
    body = message_from_bytes(letter.content, policy=default_policy).get_body(("plain",))
    assert body is not None and failed["key"] in body.get_content()
    failures = [line for run in runs for line in run.actions("dispatch") if line["failed"]]
    assert [line["failed_keys"] for line in failures] == [[failed["key"]]]


def alert_sent(cli: Cli) -> bool:
    """True once an alert row is sent."""
    rows = cli("outbox", "--json").json()
    return any(row["kind"] == "alert" and row["status"] == "sent" for row in rows)


# --------------------------------------------------------------------------- clock backwards


def test_clock_jumping_backwards_resends_nothing(
    loaded: Cli, sink: Sink, services: list[Service]
) -> None:
    cli = loaded
    # The first run's clock stops on 6 Sep at noon: after the 7-day reminders (so they are
    # sent, at most 3 hours late), before the 1-day ones (never processed by this run).
    before = start(cli, sink, services, 2, "2010-08-29T08:00", stop="2010-09-06T12:00")
    wait_until(lambda: R7 in timers(cli), WAIT, what="the 7-day reminders")
    wait_until(lambda: pending(cli) == 0, WAIT, what="the 7-day reminders to go out")
    stop_all(before)
    done = set(timers(cli))
    assert done == {R14, R7}
    delivered = sink.ids()
    assert expected(cli, R7) <= set(delivered) and set(delivered.values()) == {1}

    # Back to 5 Sep: the 7-day reminders come round again (already processed: nothing), then
    # the 1-day reminders, new; this clock stops before the deadline.
    after = start(cli, sink, services, 2, "2010-09-05T08:00", stop="2010-09-12T12:00")
    wait_until(lambda: R1 in timers(cli), WAIT, what="the 1-day reminders")
    wait_until(lambda: pending(cli) == 0, WAIT, what="the 1-day reminders to go out")
    stop_all(after)
    assert [key for run in after for key in run.processed()] == [R1]
    assert set(timers(cli)) == done | {R1}
    again = Counter({mid: n for mid, n in sink.ids().items() if mid in delivered})
    assert again == delivered  # nothing delivered before came again
    assert expected(cli, R1) <= set(sink.ids()) - set(delivered)
    check_mail(cli, [*before, *after], sink)
