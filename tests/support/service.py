"""A ``rubrong run`` service in a subprocess, and the propose_kpis instants it processes.

``Service`` starts ``rubrong run`` and reads its JSON log lines as they come (``wait_for``,
``actions``, ``processed``, ``assert_clean_exit``); ``Sink`` is an in-process SMTP server that
records each Message-ID (and can SIGKILL a victim mid-delivery). The instants of cycle 2554's
propose_kpis (due 2010-09-13): ``R14``, ``R7``, ``R1`` (reminders), ``DEADLINE``, ``OVERDUE``,
``ESCALATION``, with their times in ``INSTANTS`` and the catch-up limit ``CATCH_UP``;
``expected(cli, key)`` the 93 Message-IDs of one notice instant, ``lateness(runs)`` how late
each instant was processed, ``ticked(key)`` a log-line test.

Used by ``tests/test_service.py``, ``tests/test_service_checkpoint.py``,
``tests/test_faults.py``, ``tests/test_multiprocess_mail.py`` and ``tests.support.multiprocess``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from notifications.keys import message_id, outbox_key
from tests.conftest import RUBRONG, Cli
from workflow.rules.timeutil import DAY_SECONDS, parse_instant

DUE = "2010-09-13"
R14, R7, R1 = (f"2554/propose_kpis/{DUE}/reminder/{n}" for n in (14, 7, 1))
DEADLINE = f"2554/propose_kpis/{DUE}/deadline/0"
OVERDUE = f"2554/propose_kpis/{DUE}/overdue/1"
ESCALATION = f"2554/propose_kpis/{DUE}/escalation/7"
INSTANTS = {  # key → (time, notice kind and offset, or None for the deadline)
    R14: ("2010-08-30T09:00", ("reminder", 14)),
    R7: ("2010-09-06T09:00", ("reminder", 7)),
    R1: ("2010-09-12T09:00", ("reminder", 1)),
    DEADLINE: ("2010-09-14", None),
    OVERDUE: ("2010-09-14T09:00", ("overdue", 1)),
    ESCALATION: ("2010-09-20T09:00", ("escalation", 7)),
}
CATCH_UP = 3 * DAY_SECONDS


class Sink:
    """An in-process SMTP server recording each accepted Message-ID and its recipients.

    With ``kill_after`` set, the server SIGKILLs ``victim`` when that many mails have arrived,
    before it answers the last one: a crash between the server's accept and the sender's
    record, wherever the machine's load puts it in time.
    """

    def __init__(self, kill_after: int | None = None) -> None:
        self.kill_after = kill_after
        self.victim: int | None = None
        self.killed = threading.Event()
        self.received: list[tuple[str, tuple[str, ...]]] = []
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.url = f"smtp://127.0.0.1:{port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(envelope.content)
        self.received.append((str(headers["Message-ID"]), tuple(envelope.rcpt_tos)))
        if self.victim is not None and len(self.received) >= (self.kill_after or 0):
            os.kill(self.victim, signal.SIGKILL)
            self.victim = None
            self.killed.set()
        return "250 Message accepted"

    def ids(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        return Counter(mid for mid, _ in self.received)


class Service:
    """One ``rubrong run`` subprocess whose JSON log lines are read as they come."""

    def __init__(self, cli: Cli, smtp: str, *args: str) -> None:
        argv = [str(RUBRONG), "--db", cli.db_url, "--smtp", smtp, "run", *args]
        self.proc = subprocess.Popen(
            argv, cwd=cli.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
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
                with contextlib.suppress(ValueError):
                    self.lines.append(json.loads(line))
                self._cond.notify_all()

    def wait_for(self, test: Callable[[dict[str, Any]], bool], timeout: float = 30) -> None:
        """Wait for a log line that passes ``test``."""
        end = time.monotonic() + timeout
        with self._cond:
            while not any(test(line) for line in self.lines):
                left = end - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    pytest.fail(f"no such log line; got:\n{''.join(self.raw)}")
                self._cond.wait(min(left, 0.5))

    def stop(self) -> int:
        """SIGTERM, then the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.finish()

    def finish(self) -> int:
        """Wait for the process and its last log line."""
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        return code

    def actions(self, action: str) -> list[dict[str, Any]]:
        """Every log line of one action."""
        return [line for line in self.lines if line["action"] == action]

    def processed(self) -> list[str]:
        """Every timer instant this process processed, in order."""
        return [key for line in self.actions("tick") for key in line["processed"]]

    def assert_clean_exit(self) -> None:
        """Every stderr line is a JSON object; SIGTERM was seen; the last line says stopped."""
        assert len(self.lines) == len(self.raw), "".join(self.raw)
        for line in self.lines:
            assert {"ts", "virtual_now", "action"} <= line.keys()
        assert [line["signal"] for line in self.actions("stop")] == ["SIGTERM"]
        assert self.lines[-1]["action"] == "stopped" and self.lines[-1]["exit_code"] == 0


def ticked(key: str) -> Callable[[dict[str, Any]], bool]:
    """A log-line test: a tick that processed ``key``."""
    return lambda line: line["action"] == "tick" and key in line["processed"]


def expected(cli: Cli, key: str) -> set[str]:
    """The 93 Message-IDs of one notice instant (every agreement proposes KPIs)."""
    notice = INSTANTS[key][1]
    assert notice is not None
    agreements = [row["agreement"] for row in cli("status", "--json").json()]
    assert len(agreements) == 93
    return {
        message_id(outbox_key("2554", org, "propose_kpis", DUE, notice[0], notice[1]))
        for org in agreements
    }


def lateness(runs: list[Service]) -> dict[str, int]:
    """Virtual seconds between each instant and the tick that processed it (once, overall)."""
    late: dict[str, int] = {}
    keys = [key for run in runs for line in run.actions("tick") for key in line["processed"]]
    assert len(keys) == len(set(keys)), keys
    for run in runs:
        for line in run.actions("tick"):
            for key in set(line["processed"]) & INSTANTS.keys():
                late[key] = parse_instant(line["virtual_now"]) - parse_instant(INSTANTS[key][0])
    return late
