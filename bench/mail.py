"""Mail dispatch rate: our dispatcher against a plain ``aiosmtplib`` loop, same server, same run.

The server is a local aiosmtpd in a child process (a real SMTP server is another process too;
in-process it would share the GIL with the client being measured) that accepts and counts.

- ours: a generated cycle with N agencies is loaded into a fresh SQLite file and ``tick`` runs
  the first reminder instant, leaving N ``pending`` reminders in the outbox; then
  ``workflow.usecases.dispatch.dispatch`` claims them in batches, renders each (Jinja2 text + HTML,
  the ``.ics``, the MIME message), sends over SMTP and records the outcome;
- baseline: ``aiosmtplib`` sending N already-built messages of the same size and shape (the
  bytes of one of ours with a distinct Message-ID each): no database, no rendering.

Both use the same number of parallel connections (the ``tick`` default, 4). They alternate
``REPEATS`` times (the reminders are made ``pending`` again between runs of ours) and the best
run of each is compared.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path

import aiosmtplib
from sqlalchemy import select, update

from bench import Figure, Report, Stopwatch
from bench.cyclegen import generate_cycle
from notifications.mailers import SmtpMailer
from notifications.message import mail_bytes
from workflow.config.validate import parse_cycle
from workflow.rules.clock import VirtualClock
from workflow.store.database import Database
from workflow.store.outbox import OUTBOX
from workflow.store.repository import get_cycle
from workflow.usecases.dispatch import dispatch, letter_for
from workflow.usecases.load import load_cycle
from workflow.usecases.tick import instants, tick

NAME = "mail"
SUMMARY = "outbox → render → SMTP dispatch rate vs a plain aiosmtplib loop (local aiosmtpd)"
DEFAULT_N = 2000
CONNECTIONS = 4
REPEATS = 3

_SERVER = """
import sys
from aiosmtpd.controller import Controller
from notifications.sink import free_port

class Counter:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Counter.count += 1
        return "250 OK"

port = free_port()
controller = Controller(Counter(), hostname="127.0.0.1", port=port)
controller.start()
print(port, flush=True)
for line in sys.stdin:
    print(Counter.count, flush=True)
controller.stop()
"""


class Sink:
    """The aiosmtpd child process: ``port``, and ``received()`` asks it for its count."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def received(self) -> int:
        """Messages accepted so far."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        """Stop the server process."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _prepare(directory: Path, n: int) -> tuple[Database, int, list[bytes]]:
    """N pending reminders in a fresh database; N equivalent messages for the baseline."""
    cycle = parse_cycle(generate_cycle(cycle_id="2560", groups=0, agencies=n))
    first = next(i for i in instants(cycle) if i.what == "reminder")
    db = Database(f"sqlite:///{directory / 'mail.db'}")
    db.create_schema()
    clock = VirtualClock(first.at)
    load_cycle(db, clock, cycle, "bench")
    assert tick(db, clock, first.at).enqueued == n
    with db.read() as conn:  # one of our messages, built the way dispatch builds it
        row = conn.execute(select(OUTBOX).order_by(OUTBOX.c.key).limit(1)).one()
        sample = letter_for(conn, get_cycle(conn, cycle.id), dict(row._mapping), first.at, None)
    messages = []
    for number in range(n):
        copy = dataclasses.replace(sample, message_id=f"<bench.{number}@rubrong.invalid>")
        messages.append(mail_bytes(copy))
    return db, first.at, messages


async def _plain(port: int, messages: list[bytes], connections: int) -> None:
    """The baseline: ``connections`` clients, each a loop of ``sendmail`` on one connection."""
    queue = list(reversed(messages))

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        while queue:
            await client.sendmail("opdc@opdc.rubrong.example", ["head@bench.example"], queue.pop())
        await client.quit()

    await asyncio.gather(*(worker() for _ in range(connections)))


def _baseline(sink: Sink, messages: list[bytes], connections: int) -> float:
    before, watch = sink.received(), Stopwatch()
    with watch.running():
        asyncio.run(_plain(sink.port, messages, connections))
    assert sink.received() - before == len(messages)
    return watch.rate(len(messages))


def _ours(sink: Sink, db: Database, now: int, n: int) -> float:
    """One dispatch of the ``n`` pending reminders; then they are made pending again."""
    before, watch = sink.received(), Stopwatch()
    with watch.running():
        outcome = dispatch(db, SmtpMailer("127.0.0.1", sink.port, connections=CONNECTIONS), now)
    assert outcome.sent == n and not outcome.failed, outcome
    assert sink.received() - before == n
    with db.write() as conn:  # what ``outbox resend`` does, for every row
        conn.execute(update(OUTBOX).values(status="pending", attempts=0, next_attempt_at=0))
    return watch.rate(n)


def run(n: int) -> Report:
    """Dispatch ``n`` reminders through our code and send ``n`` plain messages, same server.

    The two alternate ``REPEATS`` times and the best of each counts, so that a busy machine
    (another process taking the CPU for a while) disturbs the ratio as little as it can.
    """
    title = f"{n:,} reminders (text + HTML + .ics), {CONNECTIONS} SMTP connections"
    report = Report(NAME, title)
    sink = Sink()
    plain: list[float] = []
    ours: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="rubrong-bench-") as scratch:
            db, now, messages = _prepare(Path(scratch), n)
            single = _baseline(sink, messages, 1)
            for _ in range(REPEATS):
                plain.append(_baseline(sink, messages, CONNECTIONS))
                ours.append(_ours(sink, db, now, n))
            db.dispose()
    finally:
        sink.close()
    size = sum(len(m) for m in messages) / len(messages)
    report.figures += [
        Figure("mails/s ours (claim, render, .ics, MIME, SMTP, record)", max(ours)),
        Figure(f"mails/s plain aiosmtplib, {CONNECTIONS} connections", max(plain)),
        Figure("mails/s plain aiosmtplib, 1 connection", single),
        Figure("message size", size, "bytes"),
    ]
    report.ratios.append(Figure("ratio ours/plain", max(ours) / max(plain)))
    report.notes.append(
        f"best of {REPEATS} alternating runs; all ours: "
        + ", ".join(f"{rate:,.0f}" for rate in ours)
        + "; all plain: "
        + ", ".join(f"{rate:,.0f}" for rate in plain)
    )
    return report
