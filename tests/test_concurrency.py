"""Concurrent writers and killed writers, with real processes, on both backends.

Two kinds of process are used:

- the installed ``rubrong`` command (``Popen``), for the user's view: exit codes, one clear line;
- a *fork server*: one Python process that has imported the engine once and forks a child per
  fire (``serve`` below, driven over stdin/stdout by ``Forker``). Children are real processes with
  their own database connections, released together through a pipe, so that many rounds of a
  race, or of a SIGKILL at a random instant, cost milliseconds instead of a process start each.

``RUBRONG_TEST_PAUSE_IN_FIRE=SECONDS`` (a test hook in ``workflow.engine``) makes a fire sleep
inside its write transaction, after the agreement's UPDATE and before the history append, so a
second writer or a SIGKILL can be aimed at the middle of the transaction.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from typing import IO, Any

import pytest

from tests.conftest import RUBRONG, ROOT, Cli, kpi_set
from workflow.timeutil import parse_instant

KPIS = kpi_set()
KPIS_TEXT = json.dumps(KPIS, ensure_ascii=False)
PROPOSE_AT = parse_instant("2010-09-10")
PAUSE_ENV = "RUBRONG_TEST_PAUSE_IN_FIRE"


# --------------------------------------------------------------------------- the fork server


def serve() -> None:  # pragma: no cover - runs in the fork server process
    """Read JSON commands on stdin, one a line, and answer each with one JSON line.

    ``{"op": "fire", "fires": [spec, …]}`` forks one child per spec, answers ``{"pids": […]}``,
    then releases every child at once; ``{"op": "wait", "pids": […]}`` reaps them and answers
    ``{"codes": […]}`` (an exit status, or minus the signal number that ended the child).
    A spec is ``{url, agreement, event, role, at?, data?, pause?}``.
    """
    import workflow.engine  # noqa: F401  (imported once here; children inherit it)
    import workflow.store  # noqa: F401

    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "fire":
            gate_read, gate_write = os.pipe()
            pids = [_fork_fire(spec, gate_read, gate_write) for spec in command["fires"]]
            os.close(gate_read)
            _reply({"pids": pids})
            os.write(gate_write, b"g" * len(pids))
            os.close(gate_write)
        elif command["op"] == "wait":
            _reply({"codes": [_reap(pid) for pid in command["pids"]]})


def _reply(message: dict[str, Any]) -> None:  # pragma: no cover - fork server
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _reap(pid: int) -> int:  # pragma: no cover - fork server
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _fork_fire(spec: dict[str, Any], gate_read: int, gate_write: int) -> int:  # pragma: no cover
    pid = os.fork()
    if pid:
        return pid
    code = 99
    try:
        os.close(gate_write)
        os.read(gate_read, 1)
        from workflow.clock import SystemClock
        from workflow.engine import FireRequest, fire
        from workflow.errors import RubrongError
        from workflow.store import Database

        if spec.get("pause"):
            os.environ[PAUSE_ENV] = str(spec["pause"])
        request = FireRequest(
            spec["agreement"], spec["event"], spec["role"], spec.get("at"), spec.get("data")
        )
        try:
            fire(Database(spec["url"]), SystemClock(), request)
            code = 0
        except RubrongError as exc:
            code = exc.exit_code
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


class Forker:
    """The test's end of the fork server."""

    def __init__(self) -> None:
        self.errors: IO[str] = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.test_concurrency import serve; serve()"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
        )

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pytest.fail(f"the fork server died ({self.proc.poll()}): {self.stderr()}")
        line = self.proc.stdout.readline()
        assert line, f"the fork server died: {self.stderr()}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def start(self, fires: list[dict[str, Any]]) -> list[int]:
        """Fork one child per fire and release them together; their pids."""
        pids: list[int] = self._ask({"op": "fire", "fires": fires})["pids"]
        return pids

    def wait(self, pids: list[int]) -> list[int]:
        """Exit codes of the children (minus the signal number for a killed one)."""
        codes: list[int] = self._ask({"op": "wait", "pids": pids})["codes"]
        assert 99 not in codes, self.stderr()
        return codes

    def run(self, fires: list[dict[str, Any]]) -> list[int]:
        """Fire together and wait for all of them."""
        return self.wait(self.start(fires))

    def stderr(self) -> str:
        """What the server and its children wrote on stderr."""
        self.errors.seek(0)
        return self.errors.read()

    def close(self) -> None:
        """Stop the server (end of its stdin) and reap it."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.errors.close()


@pytest.fixture(scope="module")
def forker() -> Iterator[Forker]:
    """One fork server for the module."""
    server = Forker()
    yield server
    server.close()


def propose(cli: Cli, agreement: str, pause: float | None = None) -> dict[str, Any]:
    """The spec of ``propose_kpis`` by the province itself, dated before the deadline."""
    spec: dict[str, Any] = {
        "url": cli.db_url,
        "agreement": agreement,
        "event": "propose_kpis",
        "role": f"province:{agreement}",
        "at": PROPOSE_AT,
        "data": KPIS,
    }
    if pause:
        spec["pause"] = pause
    return spec


def provinces(cli: Cli) -> list[str]:
    """The province agreements of the loaded cycle, in id order."""
    rows = cli("status", "--json").json()
    return sorted(row["agreement"] for row in rows if row["kind"] == "province")


def history_of(cli: Cli, agreement: str) -> list[dict[str, Any]]:
    """One agreement's history entries."""
    entries: list[dict[str, Any]] = cli("history", agreement, "--json").json()
    return entries


def assert_verifies(cli: Cli, entries: int) -> None:
    """The chain recomputes and holds exactly ``entries`` entries."""
    result = cli("verify", "--json")
    assert result.code == 0, result.err
    assert result.json()["entries"] == entries


def assert_consistent(cli: Cli, agreement: str) -> str:
    """Old or new state, never half: state, history, milestone and receipt all agree."""
    (status,) = cli("status", agreement, "--json").json()
    entries = history_of(cli, agreement)
    milestones = {row["milestone"]: row for row in cli("milestones", agreement, "--json").json()}
    receipts = [
        row
        for row in cli("outbox", "--json").json()
        if row["agreement"] == agreement and row["kind"] == "receipt"
    ]
    state = str(status["state"])
    if state == "drafted":
        assert entries == [], agreement
        assert milestones["propose_kpis"]["status"] == "pending"
        assert receipts == []
    else:
        assert state == "proposed", (agreement, state)
        assert [(e["event"], e["from"], e["to"]) for e in entries] == [
            ("propose_kpis", "drafted", "proposed")
        ]
        assert milestones["propose_kpis"]["status"] == "met"
        assert len(receipts) == 1
    return state


# --------------------------------------------------------------------------- races


def test_same_agreement_race_has_exactly_one_winner(loaded: Cli, forker: Forker) -> None:
    rounds = provinces(loaded)[:20]
    outcomes: dict[int, int] = {3: 0, 5: 0}
    for number, agreement in enumerate(rounds):
        # even rounds: the winner pauses inside its transaction, so both surely read the same
        # version and the loser can only lose on the version check (5); odd rounds: a free race
        pause = 0.15 if number % 2 == 0 else None
        codes = sorted(forker.run([propose(loaded, agreement, pause)] * 2))
        assert codes in ([0, 3], [0, 5]), (agreement, codes, forker.stderr())
        if pause:
            assert codes == [0, 5], (agreement, codes)
        outcomes[codes[1]] += 1
        entries = history_of(loaded, agreement)
        assert [entry["event"] for entry in entries] == ["propose_kpis"], agreement
        assert assert_consistent(loaded, agreement) == "proposed"
    assert outcomes[5] >= len(rounds) // 2
    assert_verifies(loaded, len(rounds))


def test_fires_on_different_agreements_all_succeed(loaded: Cli, forker: Forker) -> None:
    names = provinces(loaded)
    expected = 0
    for number in range(6):
        group = names[3 * number : 3 * number + 3]
        pause = 0.1 if number % 2 == 0 else None
        codes = forker.run([propose(loaded, agreement, pause) for agreement in group])
        assert codes == [0, 0, 0], (group, codes, forker.stderr())
        expected += 3
        for agreement in group:
            assert assert_consistent(loaded, agreement) == "proposed"
    assert_verifies(loaded, expected)
    seqs = [entry["seq"] for entry in loaded("history", "--json").json()]
    assert seqs == list(range(1, expected + 1))


def test_sigkill_at_random_instants_leaves_old_or_new(loaded: Cli, forker: Forker) -> None:
    names = provinces(loaded)
    calibration = names[0]
    started = time.monotonic()
    assert forker.run([propose(loaded, calibration)]) == [0]
    duration = time.monotonic() - started
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    seen: dict[tuple[int, str], int] = {}
    proposed = 1
    for number, agreement in enumerate(names[1:21]):
        pause = 0.05 if rng.random() < 0.3 else None
        delay = 0.0 if number == 0 else rng.uniform(0, 2 * duration + (pause or 0))
        (pid,) = forker.start([propose(loaded, agreement, pause)])
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        (code,) = forker.wait([pid])
        assert code in (0, -signal.SIGKILL), (code, forker.stderr())
        state = assert_consistent(loaded, agreement)
        if code == 0:
            assert state == "proposed", (seed, agreement)
        proposed += state == "proposed"
        seen[(code, state)] = seen.get((code, state), 0) + 1
    assert seen.get((-signal.SIGKILL, "drafted"), 0) >= 1, (seed, seen)
    assert_verifies(loaded, proposed)
    # nothing was left locked: every agreement still drafted accepts the fire now
    for agreement in names[1:21]:
        if loaded("status", agreement, "--json").json()[0]["state"] == "drafted":
            result = loaded("fire", agreement, "propose_kpis", "--as", f"province:{agreement}",
                            "--at", "2010-09-10", "--data", KPIS_TEXT)  # fmt: skip
            assert result.code == 0, result.err
            proposed += 1
    assert_verifies(loaded, proposed)


# --------------------------------------------------------------------------- the real command


def spawn(cli: Cli, agreement: str, pause: float | None) -> subprocess.Popen[str]:
    """The installed ``rubrong fire`` in a child process (stderr piped)."""
    env = {**os.environ}
    env.pop(PAUSE_ENV, None)
    if pause is not None:
        env[PAUSE_ENV] = str(pause)
    args = ["fire", agreement, "propose_kpis", "--as", f"province:{agreement}",
            "--at", "2010-09-10", "--data", KPIS_TEXT]  # fmt: skip
    return subprocess.Popen(
        [str(RUBRONG), "--db", cli.db_url, *args],
        cwd=cli.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Exit code and stderr of a spawned command."""
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_real_command_race_loser_exits_5(loaded: Cli) -> None:
    procs = [spawn(loaded, "TH-50", 1.0) for _ in range(2)]
    results = sorted(finish(proc) for proc in procs)
    codes = [code for code, _ in results]
    assert codes == [0, 5], results
    loser = results[1][1].strip().splitlines()
    loser = [line for line in loser if "test pause" not in line]
    assert len(loser) == 1 and "Traceback" not in loser[0], loser
    assert "TH-50" in loser[0]
    assert assert_consistent(loaded, "TH-50") == "proposed"
    assert_verifies(loaded, 1)


def test_real_commands_on_different_agreements(loaded: Cli) -> None:
    procs = [spawn(loaded, agreement, 0.5) for agreement in ("TH-50", "TH-51", "TH-52")]
    results = [finish(proc) for proc in procs]
    assert [code for code, _ in results] == [0, 0, 0], results
    for agreement in ("TH-50", "TH-51", "TH-52"):
        assert assert_consistent(loaded, agreement) == "proposed"
    assert_verifies(loaded, 3)


def test_real_command_killed_inside_its_transaction(loaded: Cli) -> None:
    proc = spawn(loaded, "TH-50", 60)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    line = ""
    while "test pause in fire" not in line:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "the fire ended before its pause"
        assert time.monotonic() < deadline
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stderr.close()
    assert proc.stdout is not None
    proc.stdout.close()
    # the UPDATE had been made, the history not yet appended: none of it survives
    assert assert_consistent(loaded, "TH-50") == "drafted"
    assert_verifies(loaded, 0)
    # and nothing stays locked: the same fire goes through now, on the chain too
    started = time.monotonic()
    result = loaded("fire", "TH-50", "propose_kpis", "--as", "province:TH-50",
                    "--at", "2010-09-10", "--data", KPIS_TEXT)  # fmt: skip
    assert result.code == 0, result.err
    assert time.monotonic() - started < 10
    assert assert_consistent(loaded, "TH-50") == "proposed"
    assert_verifies(loaded, 1)
