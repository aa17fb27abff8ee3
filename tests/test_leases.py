"""No stranded letters: outbox leases are short, renewed while their dispatcher lives, and taken
back at once from a dead dispatcher on this host, or after one short lease from another host.

cycle_2554 is loaded and the sar6 14-day reminders (16 Apr 2011 09:00, one per agreement) are
queued with ``tick --no-send``; then real ``rubrong`` processes dispatch them to real SMTP
servers: a socket server that accepts connections and never says a word (the dispatcher hangs
in its SMTP greeting until its timeout), or aiosmtpd (``tests.support.multiprocess.Sink``).

- ``tick`` SIGKILLed while it holds the rows: the next ``tick`` at the same instant sends every
  letter at once, each once (the silent server took none);
- ``tick`` SIGKILLed right after the server accepted its 10th letter: the next ``tick`` sends
  everything; only the letters accepted before the kill come twice, with the same Message-ID;
- a silent server does not hold a ``tick`` forever (finite SMTP timeouts): it ends, the
  letters stay pending for a retry, no lease left;
- ``run`` SIGKILLed on "another host" (``RUBRONG_HOST_ID``): its rows stay held while its lease
  runs, then the next ``tick`` here sends them all, each once;
- a dispatcher stuck on a slow server keeps its rows beyond the lease: the heartbeat renews it,
  another dispatcher takes nothing;
- PostgreSQL restarted (the private server) while ``tick`` sends: every letter goes out once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from notifications.mailers import RecordingMailer, SmtpMailer
from tests.conftest import CYCLE_2554, RUBRONG, Cli
from tests.support.multiprocess import Sink, wait_until
from tests.support.postgres import PrivatePostgres, pg, private_pg  # noqa: F401  (fixtures)
from workflow.rules import defaults
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.leases import HOST_ENV, host_id, release_stale_leases, worker_id
from workflow.store.outbox import OUTBOX
from workflow.usecases.dispatch import dispatch

AT = "2011-04-16T09:00:00+07:00"  # the sar6 14-day reminders
GENEROUS = 120.0  # seconds: deadlines for conditions on a loaded machine
S = TypeVar("S", bound=Sink)


class SilentServer:
    """Accepts TCP connections and never answers (nor closes them) until ``close``."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.accepted: list[socket.socket] = []
        self.sock.settimeout(0.1)  # so that the accepting thread sees ``close``
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            self.accepted.append(conn)

    def close(self) -> None:
        """Stop listening; drop every connection."""
        self._closed.set()
        self._thread.join(timeout=5)
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class GatedSink(Sink):
    """aiosmtpd that holds each letter (up to ``hold`` seconds) until ``gate`` is set;
    ``arrived`` is set when the first letter is being held."""

    def __init__(self, hold: float) -> None:
        super().__init__()
        self.hold = hold
        self.arrived = threading.Event()
        self.gate = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrived.set()
        end = time.monotonic() + self.hold
        while not self.gate.is_set() and time.monotonic() < end:
            await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def started(server: S) -> S:
    """``server``, listening."""
    server.controller.start()
    return server


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = started(Sink())
    yield server
    server.controller.stop()


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Child processes of a test, killed at the end if still running."""
    children: list[subprocess.Popen[bytes]] = []
    yield children
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()


def queue(cli: Cli) -> dict[str, str]:
    """Process every instant up to ``AT`` without sending (what came earlier is ``skipped``:
    too late to send); key → Message-ID of each pending row: the reminders of ``AT``."""
    result = cli("tick", "--now", AT, "--no-send")
    assert result.code == 0, result.err
    rows = {
        row["key"]: row["message_id"]
        for row in cli("outbox", "--json").json()
        if row["status"] == "pending"
    }
    assert len(rows) == 93 and all("/sar6/2011-04-30/reminder/14" in key for key in rows), rows
    return rows


def leases(cli: Cli) -> dict[str, tuple[str | None, int | None]]:
    """Pending rows: key → (leased_by, lease_until)."""
    db = Database(cli.db_url)
    try:
        with db.read() as conn:
            query = select(OUTBOX.c.key, OUTBOX.c.leased_by, OUTBOX.c.lease_until).where(
                OUTBOX.c.status == "pending"
            )
            return {row.key: (row.leased_by, row.lease_until) for row in conn.execute(query)}
    finally:
        db.dispose()


def all_leased(cli: Cli, count: int) -> bool:
    """True when ``count`` pending rows are leased."""
    held = leases(cli)
    return len(held) == count and all(until is not None for _, until in held.values())


def spawn(
    cli: Cli,
    procs: list[subprocess.Popen[bytes]],
    smtp: str,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """The real ``rubrong`` command in a child process (stderr to a file in the test dir)."""
    log = (cli.cwd / f"child-{len(procs)}.log").open("wb")
    argv = [str(RUBRONG), "--db", cli.db_url, "--smtp", smtp, *args]
    child = subprocess.Popen(
        argv, cwd=cli.cwd, stdout=log, stderr=log, env={**os.environ, **(env or {})}
    )
    log.close()
    procs.append(child)
    return child


def kill(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL, and reap (so that its pid is gone)."""
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL


def tick(cli: Cli, smtp: str) -> dict[str, Any]:
    """``tick --now AT --json`` in-process against ``smtp``; its summary."""
    result = cli("tick", "--now", AT, "--json", smtp=smtp)
    assert result.code == 0, result.err
    summary: dict[str, Any] = result.json()
    return summary


def all_sent(cli: Cli, ids: dict[str, str]) -> None:
    """Every queued row is ``sent``, with its own Message-ID, and no lease left."""
    rows = {row["key"]: row for row in cli("outbox", "--json").json()}
    assert {key: rows[key]["message_id"] for key in ids} == ids
    assert {rows[key]["status"] for key in ids} == {"sent"}
    assert leases(cli) == {}  # nothing pending


# --------------------------------------------------------------------------- tick killed


def test_tick_killed_while_holding_the_rows_next_tick_sends_them_at_once(
    loaded: Cli, silent: SilentServer, sink: Sink, procs: list[subprocess.Popen[bytes]]
) -> None:
    cli = loaded
    ids = queue(cli)
    stuck = spawn(cli, procs, silent.url, "tick", "--now", AT)
    wait_until(lambda: all_leased(cli, 93), GENEROUS, "the stuck tick to lease every row")
    holders = {by for by, _ in leases(cli).values()}
    assert len(holders) == 1 and stuck.poll() is None
    (holder,) = holders
    assert holder is not None and holder.startswith(f"{host_id()}:{stuck.pid}:")
    kill(stuck)

    summary = tick(cli, sink.url)  # the same instant, at once: not after the lease
    assert (summary["released"], summary["sent"], summary["retrying"]) == (93, 93, 0)
    all_sent(cli, ids)
    assert sink.ids() == Counter(dict.fromkeys(ids.values(), 1))
    assert tick(cli, sink.url)["sent"] == 0  # nothing left, nothing twice


def test_letters_in_flight_at_the_kill_come_again_with_the_same_message_id(
    loaded: Cli, sink: Sink, procs: list[subprocess.Popen[bytes]]
) -> None:
    cli = loaded
    ids = queue(cli)
    killed = threading.Event()
    victim: list[subprocess.Popen[bytes]] = []

    def on_accept(_letter: Any) -> None:  # in the server's loop, before its 250 answer
        if len(sink.received) >= 10 and victim and not killed.is_set():
            os.kill(victim[0].pid, signal.SIGKILL)
            killed.set()

    sink.on_accept = on_accept
    victim.append(spawn(cli, procs, sink.url, "tick", "--now", AT))
    assert killed.wait(GENEROUS), "no letter arrived"
    assert victim[0].wait(timeout=30) == -signal.SIGKILL
    before = sink.ids()
    assert 10 <= len(before) < 93 and set(before.values()) == {1}
    assert len(leases(cli)) == 93  # one batch, claimed whole, none recorded as sent

    summary = tick(cli, sink.url)
    assert (summary["released"], summary["sent"]) == (93, 93)
    all_sent(cli, ids)
    arrived = sink.ids()
    assert set(arrived) == set(ids.values())
    twice = {mid for mid, count in arrived.items() if count == 2}
    assert twice == set(before) and set(arrived.values()) == {1, 2}
    for mid in twice:  # the same letter: same Message-ID, recipient and subject
        first, second = [letter for letter in sink.received if letter.message_id == mid]
        assert first.to == second.to
        assert _subject(first.content) == _subject(second.content)


def _subject(content: bytes) -> str:
    return str(message_from_bytes(content, policy=default_policy)["Subject"])


def test_a_silent_server_does_not_hold_a_tick_forever(
    sqlite_cli: Cli, silent: SilentServer, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Every SMTP step has a finite timeout: the tick gives up, the letters wait for a retry."""
    cli = sqlite_cli
    assert cli("load", str(CYCLE_2554)).code == 0
    ids = queue(cli)
    stuck = spawn(cli, procs, silent.url, "tick", "--now", AT)
    assert stuck.wait(timeout=GENEROUS) == 0
    rows = {row["key"]: row for row in cli("outbox", "--json").json()}
    assert {(rows[key]["status"], rows[key]["attempts"]) for key in ids} == {("pending", 1)}
    assert all(until is None for _, until in leases(cli).values())  # nothing left leased
    assert silent.accepted, "the tick never connected"


# --------------------------------------------------------------------------- another host


def test_run_killed_on_another_host_its_rows_go_out_after_one_short_lease(
    loaded: Cli, silent: SilentServer, sink: Sink, procs: list[subprocess.Popen[bytes]]
) -> None:
    cli = loaded
    ids = queue(cli)
    assert os.environ.get(HOST_ENV) is None  # "this" host is the real one
    elsewhere = {HOST_ENV: "elsewhere.example"}
    args = ("run", "--clock-start", AT, "--speed", "1", "--poll", "600")
    service = spawn(cli, procs, silent.url, *args, env=elsewhere)
    wait_until(lambda: all_leased(cli, 93), GENEROUS, "the service to lease every row")
    kill(service)
    held = leases(cli)
    holders = {tuple(str(by).rsplit(":", 2)[:2]) for by, _ in held.values()}
    assert holders == {("elsewhere.example", str(service.pid))}
    untils = [until for _, until in held.values() if until is not None]
    db = Database(cli.db_url)
    try:
        # Its pid means nothing here: while the lease runs the rows stay its own …
        assert release_stale_leases(db, min(untils) - 1) == 0
        assert all_leased(cli, 93)
    finally:
        db.dispose()

    sent: list[int] = []

    def delivered() -> bool:
        sent.append(tick(cli, sink.url)["sent"])
        return not leases(cli)

    # … and once it has run out, the next tick here sends them all (one short lease: ~30 s)
    wait_until(delivered, GENEROUS + defaults.LEASE_SECONDS, "the rows to be taken over")
    assert sorted(sent)[-1] == 93 and sum(sent) == 93  # all at once, each once
    all_sent(cli, ids)
    assert sink.ids() == Counter(dict.fromkeys(ids.values(), 1))


# --------------------------------------------------------------------------- heartbeat


def test_a_dispatcher_stuck_on_a_slow_server_keeps_its_rows(
    loaded: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = loaded
    ids = queue(cli)
    monkeypatch.setattr(defaults, "LEASE_SECONDS", 4)
    monkeypatch.setattr(defaults, "LEASE_RENEW_SECONDS", 0.25)
    slow = started(GatedSink(hold=GENEROUS))
    db = Database(cli.db_url)
    outcome: list[Any] = []
    try:
        host, port = slow.url.removeprefix("smtp://").split(":")
        mailer = SmtpMailer(host, int(port), timeout=GENEROUS + 30)

        def send() -> None:
            outcome.append(dispatch(db, mailer, parse_instant(AT)))

        sender = threading.Thread(target=send)
        sender.start()
        assert slow.arrived.wait(GENEROUS), "no letter reached the server"
        first = leases(cli)
        assert {by for by, _ in first.values()} == {worker_id()}
        claimed = max(until for _, until in first.values() if until is not None)
        # past the first lease's end: without renewals it would have run out
        wait_until(lambda: time.time() > claimed + 2, GENEROUS, "the first lease to pass")
        renewed = leases(cli)
        assert all(until is not None and until > claimed for _, until in renewed.values())
        assert release_stale_leases(db, int(time.time())) == 0
        other = RecordingMailer()
        assert dispatch(db, other, parse_instant(AT)).sent == 0 and other.sent == []
        slow.gate.set()
        sender.join(timeout=GENEROUS)
        assert not sender.is_alive()
    finally:
        slow.gate.set()
        slow.controller.stop()
        db.dispose()
    assert outcome[0].sent == 93
    all_sent(cli, ids)
    assert slow.ids() == Counter(dict.fromkeys(ids.values(), 1))


# --------------------------------------------------------------------------- PostgreSQL restarted


def test_postgres_restarted_while_tick_sends_every_letter_goes_once(
    pg: PrivatePostgres,  # noqa: F811
    tmp_path: Path,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    cli = Cli(pg.database(), tmp_path)
    assert cli("load", str(CYCLE_2554)).code == 0
    ids = queue(cli)
    # Letters wait at the server until PostgreSQL is back, at most 7 s: the dispatcher's own
    # SMTP timeout is 10 s.
    slow = started(GatedSink(hold=7))
    try:
        sending = spawn(cli, procs, slow.url, "tick", "--now", AT)
        assert slow.arrived.wait(GENEROUS), "no letter reached the server"
        pg.stop("fast")  # the tick's leases are in the database; its sessions end
        pg.start()
        slow.gate.set()
        code = sending.wait(timeout=GENEROUS)
        first = slow.ids()
        summary = tick(cli, slow.url)  # whatever the first left (nothing, if it recorded)
    finally:
        slow.gate.set()
        slow.controller.stop()
    all_sent(cli, ids)
    arrived = slow.ids()
    assert set(arrived) == set(ids.values())
    if code == 0:  # back before the tick recorded its letters: each once
        assert summary["sent"] == 0 and arrived == Counter(dict.fromkeys(ids.values(), 1))
    else:  # still away then: the letters it had handed over come again, same Message-ID
        twice = {mid for mid, count in arrived.items() if count > 1}
        assert twice <= set(first) and set(arrived.values()) <= {1, 2}
    print(f"first tick exit {code}; {sum(arrived.values()) - len(arrived)} letters twice")
