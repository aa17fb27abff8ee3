"""Concurrent writers and killed writers, with real processes, on both backends.

Two kinds of process are used:

- the installed ``rubrong`` command (``Popen``), for the user's view: exit codes, one clear line;
- a *fork server* (``serve``, driven by ``Forker``) that has imported the engine once and forks a
  child per fire: real processes with their own connections, released together through a pipe,
  so many rounds of a race or of a SIGKILL at a random instant cost milliseconds each.

``RUBRONG_TEST_PAUSE_IN_FIRE=SECONDS`` (a test hook in ``workflow.usecases.fire``) makes a fire say
on stderr when it has read the agreement, and wait (SECONDS, or until SIGUSR1) inside its write
transaction, after the agreement's UPDATE and before the history append: a second writer, a
tick or a SIGKILL can be aimed at the middle of the transaction.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from typing import IO, Any

import pytest

from tests.conftest import CYCLE_2554, ROOT, RUBRONG, Cli, kpi_set
from workflow.config.validate import read_cycle_file
from workflow.rules.clock import SystemClock
from workflow.rules.errors import RubrongError
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.usecases.fire import FireRequest, fire
from workflow.usecases.load import load_cycle

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
    _warm_up()
    _reply({"ready": True})
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


def _warm_up() -> None:  # pragma: no cover - fork server
    """One fire on a throw-away database, so children inherit warm imports and caches."""
    import gc

    with tempfile.TemporaryDirectory() as scratch:
        db = Database(f"sqlite:///{scratch}/warm.db")
        db.create_schema()
        load_cycle(db, SystemClock(), read_cycle_file(CYCLE_2554), "warm-up")
        request = FireRequest("TH-50", "propose_kpis", "province:TH-50", PROPOSE_AT, KPIS)
        fire(db, SystemClock(), request)
        db.dispose()
    gc.freeze()  # children then do not copy the whole heap when they collect


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
        self.errors: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.test_concurrency import serve; serve()"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
        )
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()  # imported and warmed up: timings start now
        assert ready, f"the fork server did not start: {self.stderr()}"

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
        return list(self._ask({"op": "fire", "fires": fires})["pids"])

    def wait(self, pids: list[int]) -> list[int]:
        """Exit codes of the children (minus the signal number for a killed one)."""
        codes = list(self._ask({"op": "wait", "pids": pids})["codes"])
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
    return sorted(r["agreement"] for r in cli("status", "--json").json() if r["kind"] == "province")


def assert_verifies(cli: Cli, entries: int) -> None:
    """The chain recomputes and holds exactly ``entries`` entries."""
    result = cli("verify", "--json")
    assert result.code == 0, result.err
    assert result.json()["entries"] == entries


def states(cli: Cli, agreements: list[str]) -> dict[str, str]:
    """Each agreement's state, after checking that it is the old or the new one, never half:
    the state, the history entries, the milestone status and the receipt all agree."""
    status = {row["agreement"]: row["state"] for row in cli("status", "--json").json()}
    history: dict[str, list[tuple[str, str, str]]] = {name: [] for name in agreements}
    for entry in cli("history", "--json").json():
        history.setdefault(entry["agreement"], []).append(
            (entry["event"], entry["from"], entry["to"])
        )
    milestones = cli("milestones", "--json").json()
    propose = {m["agreement"]: m["status"] for m in milestones if m["milestone"] == "propose_kpis"}
    receipts = [
        row["agreement"] for row in cli("outbox", "--json").json() if row["kind"] == "receipt"
    ]
    new = {"proposed": ([("propose_kpis", "drafted", "proposed")], "met", 1)}
    for name in agreements:
        found = (history[name], propose[name], receipts.count(name))
        assert found == new.get(status[name], ([], "pending", 0)), (name, status[name], found)
    return {name: status[name] for name in agreements}


# --------------------------------------------------------------------------- races


def test_same_agreement_race_has_exactly_one_winner(loaded: Cli, forker: Forker) -> None:
    rounds = provinces(loaded)[:20]
    losers: list[int] = []
    for number, agreement in enumerate(rounds):
        # every fifth round the winner pauses inside its transaction, so that both almost surely
        # read the same version and the loser loses on the version check (5), not the state (3)
        pause = 0.3 if number % 5 == 0 else None
        codes = sorted(forker.run([propose(loaded, agreement, pause)] * 2))
        assert codes in ([0, 3], [0, 5]), (agreement, codes, forker.stderr())
        losers.append(codes[1])
    assert 5 in losers, losers  # (test_real_command_race_loser_exits_5 makes sure of it)
    assert set(states(loaded, rounds).values()) == {"proposed"}
    assert_verifies(loaded, len(rounds))
    print(f"race losers: {losers.count(5)} × exit 5, {losers.count(3)} × exit 3")


def test_fires_on_different_agreements_all_succeed(loaded: Cli, forker: Forker) -> None:
    names = provinces(loaded)[:18]
    for number in range(6):
        group = names[3 * number : 3 * number + 3]
        pause = 0.1 if number % 2 == 0 else None
        codes = forker.run([propose(loaded, agreement, pause) for agreement in group])
        assert codes == [0, 0, 0], (group, codes, forker.stderr())
    assert set(states(loaded, names).values()) == {"proposed"}
    assert_verifies(loaded, len(names))
    seqs = [entry["seq"] for entry in loaded("history", "--json").json()]
    assert seqs == list(range(1, len(names) + 1))


def test_sigkill_at_random_instants_leaves_old_or_new(loaded: Cli, forker: Forker) -> None:
    names = provinces(loaded)
    calibration, victims = names[0], names[1:21]
    started = time.monotonic()
    assert forker.run([propose(loaded, calibration)]) == [0]
    duration = time.monotonic() - started
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    codes: dict[str, int] = {}
    for number, agreement in enumerate(victims):
        # some fires pause inside the transaction, widening the window a kill can land in; the
        # first one surely dies there (or before): it pauses a minute and is killed well before
        pause = 0.05 if rng.random() < 0.3 else None
        delay = rng.uniform(0, 2 * duration + (pause or 0))
        if number == 0:
            pause, delay = 60, 0.3
        (pid,) = forker.start([propose(loaded, agreement, pause)])
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        (codes[agreement],) = forker.wait([pid])
        assert codes[agreement] in (0, -signal.SIGKILL), (codes, forker.stderr())
    found = states(loaded, victims)
    for agreement, code in codes.items():
        if code == 0:
            assert found[agreement] == "proposed", (seed, agreement)
    killed_early = [a for a in victims if codes[a] < 0 and found[a] == "drafted"]
    assert killed_early, (seed, codes, found)
    proposed = 1 + list(found.values()).count("proposed")
    assert_verifies(loaded, proposed)
    print(f"seed {seed}: fire ≈ {duration:.3f} s; killed before commit {len(killed_early)}, "
          f"finished {list(codes.values()).count(0)} of {len(victims)}")  # fmt: skip
    # nothing was left locked: every agreement still drafted accepts the fire now
    for agreement in victims:
        if found[agreement] == "drafted":
            result = loaded("fire", agreement, "propose_kpis", "--as", f"province:{agreement}",
                            "--at", "2010-09-10", "--data", KPIS_TEXT)  # fmt: skip
            assert result.code == 0, result.err
    assert set(states(loaded, victims).values()) == {"proposed"}
    assert_verifies(loaded, 1 + len(victims))


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


def wait_for(proc: subprocess.Popen[str], stage: str) -> None:
    """Block until a spawned fire's test hook reports ``stage`` (``read`` or ``pause``)."""
    assert proc.stderr is not None
    line = ""
    while f"test {stage} in fire" not in line:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, f"the fire ended before its {stage} stage"


def test_real_command_race_loser_exits_5(loaded: Cli) -> None:
    # the first fire has updated the row and waits before committing; the second has surely read
    # the old version when the first is released: it must lose on the version check (exit 5)
    first = spawn(loaded, "TH-50", 60)
    wait_for(first, "pause")
    second = spawn(loaded, "TH-50", 60)
    wait_for(second, "read")
    first.send_signal(signal.SIGUSR1)  # ends its pause
    (won, _), (lost, err) = finish(first), finish(second)
    assert (won, lost) == (0, 5), err
    lines = [line for line in err.strip().splitlines() if not line.startswith("rubrong: test ")]
    assert len(lines) == 1 and "Traceback" not in err, lines
    assert "TH-50" in lines[0]
    assert states(loaded, ["TH-50"]) == {"TH-50": "proposed"}
    assert_verifies(loaded, 1)


def test_real_command_killed_inside_its_transaction(loaded: Cli) -> None:
    proc = spawn(loaded, "TH-50", 60)
    wait_for(proc, "pause")
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    # the UPDATE had been made, the history not yet appended: none of it survives
    assert states(loaded, ["TH-50"]) == {"TH-50": "drafted"}
    assert_verifies(loaded, 0)
    # and nothing stays locked: the same fire goes through now, on the chain too
    started = time.monotonic()
    result = loaded("fire", "TH-50", "propose_kpis", "--as", "province:TH-50",
                    "--at", "2010-09-10", "--data", KPIS_TEXT)  # fmt: skip
    assert result.code == 0, result.err
    assert time.monotonic() - started < 10
    assert states(loaded, ["TH-50"]) == {"TH-50": "proposed"}
    assert_verifies(loaded, 1)


def test_tick_at_the_deadline_waits_for_a_fire_in_flight(loaded: Cli) -> None:
    # the fire has met propose_kpis (uncommitted) when the tick reaches that deadline: the tick
    # must see it committed, so TH-50 gets no "missed" entry and every entry links from → to
    proc = spawn(loaded, "TH-50", 60)
    wait_for(proc, "pause")
    # SIGUSR1 ends the pause once the tick waits for the chain lock
    releaser = threading.Timer(1.0, proc.send_signal, [signal.SIGUSR1])
    releaser.start()
    ticked = loaded("tick", "--now", "2010-09-14", "--no-send")
    releaser.join()
    code, err = finish(proc)
    assert (ticked.code, code) == (0, 0), (ticked.err, err)
    assert states(loaded, ["TH-50"]) == {"TH-50": "proposed"}
    entries = loaded("history", "--json").json()
    missed = {entry["agreement"] for entry in entries if entry["event"] == "missed"}
    assert "TH-51" in missed and "TH-50" not in missed
    last: dict[str, str] = {}
    for entry in entries:
        assert entry["from"] == last.get(entry["agreement"], "drafted"), entry
        last[entry["agreement"]] = entry["to"]
    assert_verifies(loaded, len(entries))
