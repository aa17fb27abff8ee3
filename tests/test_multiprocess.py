"""Several ``rubrong run`` processes on one PostgreSQL: one leads the timers, all send the mail.

Real service subprocesses (``tests.test_service.Service``) on an accelerated clock share one
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

Throughput of fires on different agreements from 1, 2 and 3 processes is measured here too
(printed with ``-s``; none may fail because of the shared history chain).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from tests.conftest import CYCLE_2554, ROOT, Cli, kpi_set, pg_url
from tests.test_service import (
    CATCH_UP,
    ESCALATION,
    INSTANTS,
    R1,
    R7,
    Service,
    expected,
    lateness,
)
from workflow.leader import AdvisoryLeader
from workflow.store import Database
from workflow.timeutil import parse_instant

SPEED = "300000"  # a day is 0.29 wall seconds; catch_up_days (3 days) 0.86 s
START = "2010-08-29T08:00"
TUNING = ("--poll", "1", "--leader-retry", "0.5")
ORIGIN_LEAD = 1.5  # wall seconds: the processes start meanwhile, then share one virtual clock


def shared_clock(start: str, speed: str = SPEED) -> tuple[str, ...]:
    """Options giving every process started now the same virtual clock: ``start`` at the same
    wall instant (a process that is ready later catches up, as after a restart)."""
    origin = f"{time.time() + ORIGIN_LEAD:.3f}"
    return ("--clock-start", start, "--speed", speed, "--clock-origin", origin)


BATCH = ("--batch", "10")


# --------------------------------------------------------------------------- the SMTP server


class Sink:
    """A real SMTP server that records every accepted letter: Message-ID, recipients, sender.

    ``reply(message_id, recipients, attempt)`` may answer instead of accepting (``451 …``,
    ``550 …``; attempt counts from 1 per Message-ID). ``on_accept(letter)`` runs once the
    server has the letter (recorded in ``received``) and before it answers ``250``: a test that
    kills the sender there kills it surely before it could record the letter as sent, however
    the machine's load schedules the two processes. ``owners`` maps a
    letter to the pid of the process that sent it (``/proc``, Linux) when set.
    """

    def __init__(self) -> None:
        self.received: list[Letter] = []
        self.refused: list[tuple[str, str]] = []
        self.reply: Callable[[str, tuple[str, ...], int], str | None] | None = None
        self.on_accept: Callable[[Letter], None] | None = None
        self.owners: list[int] | None = None
        self._attempts: Counter[str] = Counter()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.url = f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(envelope.content)
        mid, rcpts = str(headers["Message-ID"]), tuple(envelope.rcpt_tos)
        self._attempts[mid] += 1
        answer = self.reply(mid, rcpts, self._attempts[mid]) if self.reply else None
        if answer is not None:
            self.refused.append((mid, answer))
            return answer
        peer = int(session.peer[1])
        owner = socket_owner(peer, self.port, self.owners) if self.owners else None
        letter = Letter(mid, rcpts, owner, time.monotonic(), bytes(envelope.content))
        self.received.append(letter)
        if self.on_accept is not None:
            self.on_accept(letter)  # before the 250: the sender cannot have seen it yet
        return "250 Message accepted"

    def ids(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        return Counter(letter.message_id for letter in self.received)


@dataclass(frozen=True)
class Letter:
    """One letter the server accepted: its Message-ID, envelope recipients, the pid that sent
    it (when the sink looks owners up), when (monotonic) and the raw message."""

    message_id: str
    to: tuple[str, ...]
    owner: int | None
    at: float
    content: bytes


def socket_owner(port: int, server: int, pids: list[int]) -> int | None:
    """Which of ``pids`` owns the TCP connection from local ``port`` to ``server`` (the
    client's end, read from Linux's /proc; None when no live process holds it)."""
    inode = None
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote = (int(end.split(":")[1], 16) for end in fields[1:3])
            if (local, remote) == (port, server) and fields[9] != "0":
                inode = fields[9]
                break
    if inode is None:
        return None
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:  # closed meanwhile
                continue
    return None


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


# --------------------------------------------------------------------------- helpers


def wait_any(
    runs: list[Service], test: Callable[[dict[str, Any]], bool], timeout: float = 90
) -> Service:
    """The first of ``runs`` that logs a line passing ``test``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for run in runs:
            if any(test(line) for line in list(run.lines)):
                return run
        time.sleep(0.05)
    logs = "\n".join(f"--- pid {run.proc.pid}\n{''.join(run.raw)}" for run in runs)
    pytest.fail(f"no such log line within {timeout} s:\n{logs}")


def wait_until(condition: Callable[[], bool], timeout: float = 90, what: str = "") -> None:
    """Poll ``condition`` until it holds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(0.1)


def ticked(key: str) -> Callable[[dict[str, Any]], bool]:
    """A log-line test: a tick that processed ``key``."""
    return lambda line: line["action"] == "tick" and key in line["processed"]


def pending(cli: Cli) -> int:
    """Outbox rows still pending."""
    return sum(row["status"] == "pending" for row in cli("outbox", "--json").json())


def stamp(line: dict[str, Any]) -> float:
    """A log line's wall time (epoch seconds)."""
    return dt.datetime.fromisoformat(line["ts"]).timestamp()


def leader_terms(run: Service, end: float | None = None) -> list[tuple[float, float]]:
    """The wall-time intervals in which ``run`` was the leader, from its log."""
    terms: list[tuple[float, float]] = []
    began: float | None = None
    for line in run.actions("leader"):
        if line["role"] == "leader" and began is None:
            began = stamp(line)
        elif line["role"] != "leader" and began is not None:
            terms.append((began, stamp(line)))
            began = None
    if began is not None:
        last = end if end is not None else stamp(run.lines[-1])
        terms.append((began, last))
    return terms


def assert_one_leader_at_a_time(runs: list[Service], ends: dict[int, float] | None = None) -> None:
    """Leadership terms never overlap, and every tick that processed something came from the
    process that led at the time."""
    ends = ends or {}
    terms = sorted(
        (begin, end, run.proc.pid)
        for run in runs
        for begin, end in leader_terms(run, ends.get(run.proc.pid))
    )
    assert terms, "nobody led"
    for (_, end, pid), (begin, _, other) in itertools.pairwise(terms):
        assert end <= begin, f"{pid} led until {end}, {other} from {begin}"
    for run in runs:
        mine = leader_terms(run, ends.get(run.proc.pid))
        for line in run.actions("tick"):
            if line["processed"]:
                assert any(b <= stamp(line) <= e for b, e in mine), (run.proc.pid, line)


def timers(cli: Cli) -> dict[str, tuple[int, int]]:
    """``timers_done``: ``cycle/key`` → (instant, virtual time of the claim)."""
    db = Database(cli.db_url)
    try:
        with db.read() as conn:
            rows = conn.execute(
                text("SELECT cycle_id, key, at, processed_at FROM timers_done ORDER BY at")
            ).all()
    finally:
        db.dispose()
    return {f"{cycle}/{key}": (int(at), int(claimed)) for cycle, key, at, claimed in rows}


def delays(cli: Cli, runs: list[Service]) -> dict[str, tuple[int, bool]]:
    """How late (virtual seconds) each instant was processed, and whether that is exact: the
    ``now`` of the tick that logged it, or else (its process was killed before it could log)
    the claim's clock reading, which is a little later than the ``now`` that decided."""
    logged = lateness(runs)  # (also: no instant logged twice)
    found: dict[str, tuple[int, bool]] = {
        key: (claimed - at, False) for key, (at, claimed) in timers(cli).items()
    }
    found.update({key: (late, True) for key, late in logged.items()})
    return found


def check_mail(
    cli: Cli, runs: list[Service], sink: Sink, twice: frozenset[str] = frozenset()
) -> int:
    """Letter by letter: each row the outbox says is sent arrived (once, or twice for the
    Message-IDs in ``twice``), to its recipient; nothing else arrived; the catch-up rule
    decided sent or skipped per instant. Returns the number of letters sent."""
    rows = {row["message_id"]: row for row in cli("outbox", "--json").json()}
    assert {row["status"] for row in rows.values()} <= {"sent", "skipped"}
    sent = {mid for mid, row in rows.items() if row["status"] == "sent"}
    arrived = sink.ids()
    assert set(arrived) == sent, set(arrived) ^ sent
    assert {mid: n for mid, n in arrived.items() if n != 1} == dict.fromkeys(twice, 2)
    for letter in sink.received:
        row = rows[letter.message_id]
        # An organisation's escalation goes to the supervisor with its own address copied.
        copied = 1 if row["kind"] == "escalation" and row["agreement"] else 0
        assert letter.to[0] == row["to"] and len(letter.to) == 1 + copied, letter.message_id
    for key, (late, exact) in delays(cli, runs).items():
        if key not in INSTANTS or INSTANTS[key][1] is None:
            continue
        found = {rows[mid]["status"] for mid in expected(cli, key)}
        if key == R1:  # the deadline skips the reminders not sent yet
            assert found <= {"sent", "skipped"}, (key, late)
        elif late <= CATCH_UP:
            assert found == {"sent"}, (key, late)
        elif exact:
            assert found == {"skipped"}, (key, late)
        else:  # one decision for the whole instant
            assert len(found) == 1, (key, late, found)
    return len(sent)


def check_timers(cli: Cli, runs: list[Service], *, killed: bool = False) -> None:
    """Every instant of the stretch processed exactly once, each logged by the process that
    processed it (``killed``: a killed process may have committed some it could not log);
    one ``missed`` entry per agreement; the chain verifies."""
    processed = [key for run in runs for key in run.processed()]
    assert len(processed) == len(set(processed)), Counter(processed).most_common(3)
    done = set(timers(cli))
    assert set(processed) <= done
    assert killed or set(processed) == done, done - set(processed)
    assert set(INSTANTS) <= done
    missed = [e["agreement"] for e in cli("history", "--json").json() if e["event"] == "missed"]
    assert len(missed) == len(set(missed)) == 93, Counter(missed).most_common(3)
    assert cli("verify").code == 0


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


def test_advisory_leadership_moves_when_the_session_ends() -> None:
    """In one process, quickly: one leader per schema; a lost or closed session hands over."""
    lines: list[dict[str, Any]] = []

    def log(action: str, **fields: Any) -> None:
        lines.append({"action": action, **fields})

    url, other_schema = pg_url(), pg_url()
    first, second = AdvisoryLeader(url, log), AdvisoryLeader(url, log)
    elsewhere = AdvisoryLeader(other_schema, log)
    try:
        assert (first.refresh(), second.refresh(), elsewhere.refresh()) == (True, False, True)
        assert (first.refresh(), second.refresh()) == (True, False)  # no change, no line
        assert [line["role"] for line in lines] == ["leader", "follower", "leader"]
        assert first.session is not None
        backend = first.session.execute(text("SELECT pg_backend_pid()")).scalar()
        with second.engine.connect() as admin:  # the leader's session is cut
            # (with a timeout, PostgreSQL ≥ 14 waits until the backend has gone)
            admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": backend})
        assert second.refresh() is True  # the lock went with the session
        assert first.refresh() is False
        assert "session lost" in lines[-1]["reason"] and lines[-1]["role"] == "follower"
        second.close()  # a clean stop hands over at once
        assert lines[-1]["role"] == "released" and first.refresh() is True
    finally:
        for leader in (first, second, elsewhere):
            leader.close()


def test_bad_service_options_exit_2(sqlite_cli: Cli) -> None:
    for args, message in [
        (("run", "--leader-retry", "0"), "--leader-retry"),
        (("run", "--batch", "0"), "--batch"),
        (("run", "--clock-origin", "1700000000"), "--clock-origin"),
    ]:
        result = sqlite_cli(*args)
        assert result.code == 2 and message in result.err, result


# --------------------------------------------------------------------------- fire throughput

KPIS = kpi_set()
EVENTS = (  # (event, role, at): propose (own) → agree → sign, each agreement in its own time
    ("propose_kpis", "own", "2010-09-10"),
    ("agree", "admin", "2010-09-28"),
    ("sign", "admin", "2010-11-20"),
)


def fire_worker() -> None:  # pragma: no cover - runs in a worker process
    """For each ``{url, agreements}`` line: get ready, say so, wait for ``go``, fire every
    agreement's events in turn, print the exit codes. Ends at the end of stdin."""
    from workflow.clock import SystemClock
    from workflow.engine import FireRequest, fire
    from workflow.errors import RubrongError
    from workflow.repository import get_cycle

    for line in sys.stdin:
        spec = json.loads(line)
        db = Database(spec["url"], pooled=True)  # a long-lived process (the API) pools
        requests = [
            FireRequest(name, event, own if role == "own" else role,
                        parse_instant(at), KPIS if event == "propose_kpis" else None)
            for name, own in spec["agreements"]
            for event, role, at in EVENTS
        ]  # fmt: skip
        with db.read() as conn:  # connected, and the cycle's settings parsed, before "go"
            get_cycle(conn, "2554")
        print("ready", flush=True)
        sys.stdin.readline()
        codes: list[int] = []
        for request in requests:
            try:
                fire(db, SystemClock(), request)
                codes.append(0)
            except RubrongError as exc:
                codes.append(exc.exit_code)
        db.dispose()
        print(json.dumps(codes), flush=True)


class FireWorkers:
    """Worker processes (``fire_worker``), started once for every measurement."""

    def __init__(self, count: int) -> None:
        command = [sys.executable, "-c", WORKER]
        self.procs = [
            subprocess.Popen(
                command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            for _ in range(count)
        ]

    def _say(self, proc: subprocess.Popen[str], line: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()

    def _hear(self, proc: subprocess.Popen[str]) -> str:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"a fire worker died ({proc.poll()})"
        return line

    def run(
        self, url: str, agreements: list[tuple[str, str]], processes: int
    ) -> tuple[float, list[int]]:
        """Wall seconds for every agreement's events, dealt round-robin to ``processes``
        workers released together; every exit code."""
        chosen = self.procs[:processes]
        for number, proc in enumerate(chosen):
            share = agreements[number::processes]
            self._say(proc, json.dumps({"url": url, "agreements": share}))
        for proc in chosen:
            assert self._hear(proc).strip() == "ready"
        started = time.perf_counter()
        for proc in chosen:
            self._say(proc, "go")
        codes = [code for proc in chosen for code in json.loads(self._hear(proc))]
        return time.perf_counter() - started, codes

    def close(self) -> None:
        """End of input: the workers exit."""
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


WORKER = "from tests.test_multiprocess import fire_worker; fire_worker()"


def test_fire_throughput_from_one_two_and_three_processes(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Every agreement proposes, is agreed and signed (279 fires), from 1, 2 and 3 processes;
    a first, unmeasured round warms the three workers up (imports, caches, connections)."""
    rates: dict[int, float] = {}
    workers = FireWorkers(3)
    request.addfinalizer(workers.close)
    for round_, processes in enumerate((3, 1, 2, 3)):  # round 0 warms up
        cli = Cli(pg_url(), tmp_path)
        assert cli("load", str(CYCLE_2554)).code == 0
        agreements = sorted(
            (row["agreement"], f"{row['kind']}:{row['agreement']}")
            for row in cli("status", "--json").json()
        )
        seconds, codes = workers.run(cli.db_url, agreements, processes)
        assert codes == [0] * len(agreements) * len(EVENTS), Counter(codes)
        assert cli("verify", "--json").json()["entries"] == len(codes)
        assert {row["state"] for row in cli("status", "--json").json()} == {"signed"}
        if round_:
            rates[processes] = len(codes) / seconds
    shown = ", ".join(f"{n} process(es) {rates[n]:.0f}" for n in sorted(rates))
    print(f"fires/s on PostgreSQL, different agreements: {shown}")
