"""Throughput of fires on different agreements from 1, 2 and 3 processes on one PostgreSQL
(printed with ``-s``; none may fail because of the shared history chain).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import CYCLE_2554, ROOT, Cli, kpi_set, pg_url
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database

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
    from workflow.rules.clock import SystemClock
    from workflow.rules.errors import RubrongError
    from workflow.store.repository import get_cycle
    from workflow.usecases.fire import FireRequest, fire

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


WORKER = "from tests.test_multiprocess_throughput import fire_worker; fire_worker()"


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
