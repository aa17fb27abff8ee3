"""Several ``rubrong`` processes at once (``tests/test_multiprocess_mail.py``,
``tests/test_faults.py``, ``tests/test_leases.py``): a shared accelerated clock
(``shared_clock``), a real SMTP server that records every letter and who sent it (``Sink``,
``Letter``), waiting for log lines and conditions (``wait_any``, ``wait_until``), and the oracle
that checks leadership, the timers and the mail against the contract (``check_mail``,
``check_timers``, ``assert_one_leader_at_a_time``). The service runner itself and the
propose_kpis instants are in :mod:`tests.support.service`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from tests.conftest import Cli
from tests.support.service import (
    CATCH_UP,
    INSTANTS,
    R1,
    Service,
    expected,
    lateness,
)
from workflow.store.database import Database

SPEED = "300000"  # a day is 0.29 wall seconds; catch_up_days (3 days) 0.86 s
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
