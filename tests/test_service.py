"""``rubrong run``: real service subprocesses on an accelerated clock, a real SMTP server.

The propose_kpis deliverable of cycle_2554 (due 2010-09-13, 93 provinces and groups) gives
reminders on 30 Aug, 6 Sep and 12 Sep at 09:00, the deadline at 14 Sep 00:00, the overdue
notice on 14 Sep and the escalation on 20 Sep at 09:00. At 150,000 virtual seconds per wall
second a day passes in 0.58 s, and ``catch_up_days`` (3 days) leaves 1.7 wall seconds of slack
before a late wake would skip a notice instead of sending it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from notifications.outbox import message_id, outbox_key
from tests.conftest import CYCLE_2554, RUBRONG, Cli

SPEED = "150000"
DUE = "2010-09-13"
R14, R7, R1 = (f"2554/propose_kpis/{DUE}/reminder/{n}" for n in (14, 7, 1))
DEADLINE = f"2554/propose_kpis/{DUE}/deadline/0"
OVERDUE = f"2554/propose_kpis/{DUE}/overdue/1"
ESCALATION = f"2554/propose_kpis/{DUE}/escalation/7"


class Sink:
    """An in-process SMTP server that records every Message-ID and recipient it accepts."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.received: list[tuple[str, tuple[str, ...]]] = []
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.url = f"smtp://127.0.0.1:{port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        headers = BytesHeaderParser(policy=default_policy).parsebytes(envelope.content)
        self.received.append((str(headers["Message-ID"]), tuple(envelope.rcpt_tos)))
        return "250 Message accepted"

    def ids(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        return Counter(mid for mid, _ in self.received)


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def slow_sink() -> Iterator[Sink]:
    server = Sink(delay=0.015)
    server.controller.start()
    yield server
    server.controller.stop()


class Service:
    """One ``rubrong run`` subprocess whose JSON log lines are read as they come."""

    def __init__(self, cli: Cli, smtp: str, *args: str, command: list[str] | None = None) -> None:
        argv = command or [str(RUBRONG)]
        self.proc = subprocess.Popen(
            [*argv, "--db", cli.db_url, "--smtp", smtp, "run", *args],
            cwd=cli.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.raw.append(line)
                try:
                    self.lines.append(json.loads(line))
                except ValueError:
                    pass
                self._cond.notify_all()

    def wait_for(self, test: Callable[[dict[str, Any]], bool], timeout: float = 30) -> None:
        """Wait for a log line that passes ``test``."""
        end = time.monotonic() + timeout
        with self._cond:
            while not any(test(line) for line in self.lines):
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    pytest.fail(f"no such log line; got:\n{''.join(self.raw)}")
                self._cond.wait(min(left, 0.5))

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send ``signum`` and wait for the exit code."""
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def actions(self, action: str) -> list[dict[str, Any]]:
        """Every log line of one action."""
        return [line for line in self.lines if line["action"] == action]

    def processed(self) -> list[str]:
        """Every timer instant this process processed, in order."""
        return [key for line in self.actions("tick") for key in line["processed"]]

    def assert_clean_log(self) -> None:
        """Every stderr line is one JSON object with ts, virtual_now and action."""
        assert len(self.lines) == len(self.raw), "".join(self.raw)
        for line in self.lines:
            assert {"ts", "virtual_now", "action"} <= line.keys()

    def kill(self) -> None:
        """Tear-down: never leave a service behind."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.kill()


def ticked(key: str) -> Callable[[dict[str, Any]], bool]:
    """A log-line test: a tick that processed ``key``."""
    return lambda line: line["action"] == "tick" and key in line["processed"]


def organisations(cli: Cli) -> list[tuple[str, str, str]]:
    """(id, email, supervisor_email) of every organisation of cycle 2554."""
    with sqlite3.connect(cli.db_url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute(
            "SELECT id, email, supervisor_email FROM organisations WHERE cycle_id = '2554'"
        ).fetchall()
    assert len(rows) == 93  # 75 provinces + 18 groups: every one proposes KPIs
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def expected(cli: Cli, kind: str, offset: int) -> set[str]:
    """The Message-IDs of one propose_kpis notice instant."""
    return {
        message_id(outbox_key("2554", org, "propose_kpis", DUE, kind, offset))
        for org, _, _ in organisations(cli)
    }


def query(cli: Cli, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(cli.db_url.removeprefix("sqlite:///")) as conn:
        return list(conn.execute(sql).fetchall())


@pytest.fixture
def loaded_sqlite(sqlite_cli: Cli) -> Cli:
    result = sqlite_cli("load", str(CYCLE_2554))
    assert result.code == 0, result.err
    return sqlite_cli


def test_reminders_then_sigterm_then_restart_catches_up_once(
    loaded_sqlite: Cli, sink: Sink, services: list[Service]
) -> None:
    cli = loaded_sqlite
    first = Service(cli, sink.url, "--clock-start", "2010-08-29T08:00", "--speed", SPEED)
    services.append(first)
    first.wait_for(ticked(R1))
    # SIGTERM while the 12 Sep job is still sending: it finishes, nothing after it starts.
    assert first.stop() == 0
    first.assert_clean_log()
    assert first.lines[-1]["action"] == "stopped" and first.lines[-1]["exit_code"] == 0
    assert [line["signal"] for line in first.actions("stop")] == ["SIGTERM"]
    assert first.processed() == [R14, R7, R1]
    reminders = expected(cli, "reminder", 14) | expected(cli, "reminder", 7)
    reminders |= expected(cli, "reminder", 1)
    assert len(reminders) == 279
    assert sink.ids() == Counter({mid: 1 for mid in reminders})  # each exactly once
    assert query(cli, "SELECT key FROM timers_done ORDER BY at") == [(R14,), (R7,), (R1,)]

    # Down over the deadline (14 Sep 00:00) and the overdue notice (14 Sep 09:00).
    second = Service(cli, sink.url, "--clock-start", "2010-09-16T08:00", "--speed", SPEED)
    services.append(second)
    second.wait_for(ticked(ESCALATION))
    second.wait_for(lambda line: line["action"] == "dispatch" and line["sent"] == 93)
    assert second.stop() == 0
    second.assert_clean_log()
    catch_up = second.actions("tick")[0]
    assert catch_up["processed"] == [DEADLINE, OVERDUE]
    assert (catch_up["missed"], catch_up["enqueued"]) == (93, 93)
    assert second.processed() == [DEADLINE, OVERDUE, ESCALATION]

    overdue, escalation = expected(cli, "overdue", 1), expected(cli, "escalation", 7)
    assert sink.ids() == Counter({mid: 1 for mid in reminders | overdue | escalation})
    orgs = organisations(cli)
    to = {mid: rcpt for mid, rcpt in sink.received}
    assert {to[mid] for mid in overdue} == {(email,) for _, email, _ in orgs}
    assert {to[mid] for mid in escalation} == {(sup,) for _, _, sup in orgs}
    assert query(cli, "SELECT status, COUNT(*) FROM outbox GROUP BY status") == [("sent", 465)]
    missed = query(cli, "SELECT COUNT(*) FROM history WHERE kind = 'timer' AND event = 'missed'")
    assert missed == [(93,)]
    assert cli("verify").code == 0


def test_sigkill_mid_dispatch_then_restart_sends_everything_once_per_instant(
    loaded_sqlite: Cli, slow_sink: Sink, services: list[Service]
) -> None:
    cli = loaded_sqlite
    first = Service(cli, slow_sink.url, "--clock-start", "2010-08-29T08:00", "--speed", SPEED)
    services.append(first)
    first.wait_for(ticked(R14))
    end = time.monotonic() + 30
    while len(slow_sink.received) < 10 and time.monotonic() < end:
        time.sleep(0.002)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)  # reaped: its pid no longer exists
    before_kill = slow_sink.ids()
    assert 10 <= len(before_kill) < 93, "the kill must land in the middle of the batch"
    assert query(cli, "SELECT key FROM timers_done") == [(R14,)]
    leased = query(cli, "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND lease_until")
    assert leased == [(93,)]  # the whole batch was claimed, none recorded as sent

    # Restarted well after 30 Aug: the pending rows are retries, not subject to catch-up.
    second = Service(cli, slow_sink.url, "--clock-start", "2010-09-02T12:00", "--speed", SPEED)
    services.append(second)
    second.wait_for(ticked(R7))
    second.wait_for(lambda line: line["action"] == "dispatch" and line["sent"] == 93 and
                    line["virtual_now"] >= "2010-09-06T09:00")
    assert second.stop() == 0
    second.assert_clean_log()
    assert [line["rows"] for line in second.actions("release_leases")] == [93]
    assert first.processed() == [R14]
    assert second.processed() == [R7]  # the catch-up found nothing new to process
    assert query(cli, "SELECT key FROM timers_done ORDER BY at") == [(R14,), (R7,)]

    received = slow_sink.ids()
    r14, r7 = expected(cli, "reminder", 14), expected(cli, "reminder", 7)
    assert set(received) == r14 | r7
    assert all(received[mid] == 1 for mid in r7)
    # A mail the server took before the kill may come again, with the same Message-ID.
    assert all(received[mid] == 1 + before_kill[mid] for mid in r14)
    assert query(cli, "SELECT status, COUNT(*) FROM outbox GROUP BY status") == [("sent", 186)]


def test_once_catches_up_and_skips_what_is_too_old(loaded_sqlite: Cli, sink: Sink) -> None:
    cli = loaded_sqlite
    result = cli.subprocess(
        "--smtp", sink.url, "run", "--once", "--clock-start", "2010-09-20T10:00", timeout=60
    )
    assert result.code == 0, result.err
    lines = [json.loads(line) for line in result.err.splitlines()]
    tick = next(line for line in lines if line["action"] == "tick")
    assert tick["processed"] == [R14, R7, R1, DEADLINE, OVERDUE, ESCALATION]
    assert lines[-1]["action"] == "stopped"
    # Only the escalation (1 hour old) is within catch_up_days; the rest is recorded skipped.
    assert sink.ids() == Counter({mid: 1 for mid in expected(cli, "escalation", 7)})
    rows = query(cli, "SELECT kind, status, COUNT(*) FROM outbox GROUP BY kind, status")
    assert sorted(rows) == [
        ("escalation", "sent", 93),
        ("overdue", "skipped", 93),
        ("reminder", "skipped", 279),
    ]


def test_bad_options_exit_2(sqlite_cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for args, message in [
        (("run", "--web", "nowhere"), "--web: expected HOST:PORT"),
        (("run", "--speed", "0"), "--speed"),
        (("run", "--clock-start", "yesterday"), "--clock-start"),
    ]:
        result = sqlite_cli(*args)
        assert result.code == 2 and message in result.err, result
    from workflow.cli import run

    monkeypatch.setattr(run, "WEB_MODULE", "workflow.no_such_web_for_tests.app")
    result = sqlite_cli("run", "--web", "127.0.0.1:8000")
    assert result.code == 2
    assert "web dashboard is not available" in result.err and "Traceback" not in result.err


STUB_WEB = """
from fastapi import FastAPI

def create_app(db_url, clock):
    app = FastAPI()

    @app.get("/now")
    def now() -> dict:
        return {"db": db_url, "now": clock.now()}

    return app
"""


def test_web_serves_in_a_thread_and_stops_on_sigterm(
    loaded_sqlite: Cli, sink: Sink, services: list[Service], tmp_path: Path
) -> None:
    """The real web app is another module; a stub proves the wiring: thread, clock, SIGTERM."""
    (tmp_path / "stubweb.py").write_text(textwrap.dedent(STUB_WEB))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    boot = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); import workflow.cli.run as r; "
        "r.WEB_MODULE = 'stubweb'; from workflow.cli import main; main(sys.argv[1:])"
    )
    service = Service(
        loaded_sqlite,
        sink.url,
        "--web",
        f"127.0.0.1:{port}",
        "--clock-start",
        "2011-01-01T00:00",
        "--speed",
        "1",
        command=[sys.executable, "-c", boot, str(tmp_path)],
    )
    services.append(service)
    service.wait_for(lambda line: line["action"] == "web")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/now", timeout=10) as response:
        body = json.load(response)
    assert body["db"] == loaded_sqlite.db_url
    assert 1293814800 <= body["now"] < 1293814800 + 60  # the service's virtual clock
    assert service.stop() == 0
    service.assert_clean_log()
    assert service.lines[-1]["action"] == "stopped"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/now", timeout=2)


def test_web_port_taken_exits_1(loaded_sqlite: Cli, tmp_path: Path) -> None:
    (tmp_path / "stubweb.py").write_text(textwrap.dedent(STUB_WEB))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        boot = (
            "import sys; sys.path.insert(0, sys.argv.pop(1)); import workflow.cli.run as r; "
            "r.WEB_MODULE = 'stubweb'; from workflow.cli import main; main(sys.argv[1:])"
        )
        proc = subprocess.run(
            [sys.executable, "-c", boot, str(tmp_path), "--db", loaded_sqlite.db_url, "run",
             "--web", f"127.0.0.1:{port}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env={**os.environ},
        )
    assert proc.returncode == 1, proc.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in proc.stderr.splitlines()[-1]
