"""National size: load, sweep and dispatch for 10³ … 10⁵ agreements, SQLite and PostgreSQL.

For each backend and size a child process (so that its peak RSS is its own) takes a generated
cycle (``bench.cyclegen``, N agencies) and measures, ours against the raw driver (``sqlite3``
or ``psycopg``, in the same child, on a second database made by the same schema) doing the same
writes:

- **load**: ``load_cycle`` — the cycle, its milestones, N organisations, N agreements and their
  milestone rows (set-based ``INSERT … SELECT``); raw: the same statements, ``executemany`` for
  the organisations;
- **reminder**: ``tick`` at propose_kpis' first reminder instant — N reminders enqueued;
  raw: one ``INSERT … SELECT`` into the outbox and the ``timers_done`` row;
- **deadline**: ``tick`` at its deadline (after the 7- and 1-day reminders, not timed) — N
  milestones ``missed``, N hash-chained history entries, 3N pending reminders ``skipped``; raw:
  the same UPDATEs, the chain computed in Python exactly as CONTRACT.md defines it, one
  ``executemany``;
- **dispatch**: the N overdue notices (enqueued untimed) sent to a local aiosmtpd (a child
  process) by ``dispatch`` over 4 connections: claim, render (text, HTML, .ics), send, record;
  raw: the same claims and records by the driver, and one of our messages (built before timing,
  the Message-ID swapped per letter) sent by plain ``aiosmtplib`` over 4 connections.

Printed per size: seconds ours and raw, the ratio ours/raw, and the growth from the previous
size (×10 agreements: ×10 is linear). Peak RSS of the child after load and the four ticks
(generation and parsing of the cycle file included). ``RUBRONG_BENCH_SIZES`` (``1000,10000``),
``RUBRONG_BENCH_BACKENDS`` (``sqlite,postgresql``) and ``RUBRONG_BENCH_DISPATCH`` (at most this
many letters sent per size) make a quick run; PostgreSQL is ``RUBRONG_BENCH_PG`` (default the
test server), in two fresh schemas dropped afterwards.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, text

from bench import Figure, Report
from bench.cyclegen import generate_cycle
from bench.mail import Sink
from bench.national_raw import (
    CONNECTIONS,
    CYCLE_ID,
    Raw,
    raw_deadline,
    raw_dispatch,
    raw_load,
    raw_notices,
)
from notifications.mailers import SmtpMailer
from notifications.message import mail_bytes
from workflow.config.validate import parse_cycle
from workflow.rules.clock import VirtualClock
from workflow.store.database import Database
from workflow.store.outbox import OUTBOX
from workflow.store.repository import get_cycle
from workflow.usecases.dispatch import dispatch, letter_for
from workflow.usecases.load import load_cycle
from workflow.usecases.tick import Instant, instants, tick

NAME = "national"
SUMMARY = "load, sweep, dispatch at 10³…10⁵ agreements, SQLite + PostgreSQL, vs raw drivers"
DEFAULT_N = 100_000  # the largest size; the others are n/100 and n/10
PHASES = ("load", "reminder", "deadline", "dispatch")
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def _sizes(n: int) -> list[int]:
    given = os.environ.get("RUBRONG_BENCH_SIZES")
    sizes = [int(s) for s in given.split(",")] if given else [n // 100, n // 10, n]
    return sorted({size for size in sizes if size > 0})


def _backends() -> list[str]:
    return os.environ.get("RUBRONG_BENCH_BACKENDS", "sqlite,postgresql").split(",")


def _pg_dsn() -> str:
    url = os.environ.get("RUBRONG_BENCH_PG") or os.environ.get("RUBRONG_TEST_PG") or PG_DEFAULT
    return url.replace("postgresql+psycopg://", "postgresql://")


# --------------------------------------------------------------------------- one measurement


def _timed(action: Callable[[], object]) -> tuple[float, object]:
    gc.collect()  # the garbage of the previous phase is not this one's
    started = time.perf_counter()
    outcome = action()
    return time.perf_counter() - started, outcome


@contextmanager
def _databases(backend: str) -> Iterator[tuple[str, Raw]]:
    """Our database's URL and a raw connection to a second one, both at the newest schema."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="rubrong-national-") as scratch:
            raw_path = Path(scratch) / "raw.db"
            _create(f"sqlite:///{raw_path}")
            lite = sqlite3.connect(raw_path, isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                lite.execute(f"PRAGMA {pragma}")
            try:
                yield f"sqlite:///{Path(scratch) / 'ours.db'}", Raw(lite, pg=False)
            finally:
                lite.close()
        return
    import psycopg

    dsn = _pg_dsn()
    schemas = [f"bench_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with psycopg.connect(dsn, autocommit=True) as admin:
        for schema in schemas:
            admin.execute(f'CREATE SCHEMA "{schema}"')
    urls = [
        dsn.replace("postgresql://", "postgresql+psycopg://")
        + ("&" if "?" in dsn else "?")
        + f"options=-csearch_path%3D{schema}"
        for schema in schemas
    ]
    try:
        _create(urls[1])
        with psycopg.connect(dsn, autocommit=True, options=f"-csearch_path={schemas[1]}") as conn:
            yield urls[0], Raw(conn, pg=True)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            for schema in schemas:
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _create(url: str) -> None:
    db = Database(url)
    db.create_schema()
    db.dispose()


_CAP = (
    "UPDATE outbox SET status = 'skipped' WHERE status = 'pending' AND key NOT IN "
    "(SELECT key FROM outbox WHERE status = 'pending' ORDER BY key LIMIT {cap})"
)


def _subject(conn: Connection, instant: Instant) -> str:
    """The subject our tick gave this instant's notices (the raw side writes the same)."""
    pattern = "%/" + instant.key
    query = text("SELECT subject FROM outbox WHERE key LIKE :p LIMIT 1")
    return str(conn.execute(query, {"p": pattern}).scalar_one())


def measure(backend: str, size: int, port: int, cap: int | None) -> dict[str, Any]:
    """Ours, then raw, for one backend and size; seconds per phase, letters sent, peak RSS."""
    cycle = parse_cycle(generate_cycle(cycle_id=CYCLE_ID, groups=0, agencies=size))
    found = {(i.what, i.offset): i for i in instants(cycle) if i.milestone.id == "propose_kpis"}
    first, week, day = (found["reminder", days] for days in (14, 7, 1))
    deadline, overdue = found["deadline", 0], found["overdue", 1]
    ours: dict[str, float] = {}
    raw_t: dict[str, float] = {}
    with _databases(backend) as (url, raw):
        db = Database(url, pooled=True)
        db.create_schema()
        clock = VirtualClock(first.at)
        ours["load"], _ = _timed(lambda: load_cycle(db, clock, cycle, "bench"))
        with db.read() as conn:  # parsed once, as a running service has it
            get_cycle(conn, CYCLE_ID)
        for phase, instant, field in (
            ("reminder", first, "enqueued"),
            ("week", week, ""),
            ("day", day, ""),
            ("deadline", deadline, "missed"),
            ("overdue", overdue, "enqueued"),
        ):
            clock.set(instant.at)
            seconds, report = _timed(functools.partial(tick, db, clock, instant.at))
            if field:
                assert getattr(report, field) == size, (phase, report)
            if phase in PHASES:
                ours[phase] = seconds
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        letters = min(size, cap) if cap is not None else size
        with db.write() as conn:
            conn.execute(text(_CAP.format(cap=letters)))
            row = conn.execute(select(OUTBOX).where(OUTBOX.c.status == "pending").limit(1)).one()
            sample = letter_for(
                conn, get_cycle(conn, CYCLE_ID), dict(row._mapping), overdue.at, None
            )
            subjects = {i.key: _subject(conn, i) for i in (first, week, day, overdue)}
        mailer = SmtpMailer("127.0.0.1", port, connections=CONNECTIONS)
        ours["dispatch"], outcome = _timed(lambda: dispatch(db, mailer, overdue.at))
        assert getattr(outcome, "sent", None) == letters, outcome
        db.dispose()
        letter = mail_bytes(sample)

        raw_t["load"], _ = _timed(lambda: raw_load(raw, cycle, first.at))
        raw_t["reminder"], count = _timed(lambda: raw_notices(raw, first, subjects[first.key]))
        assert count == size
        for instant in (week, day):
            raw_notices(raw, instant, subjects[instant.key])
        raw_t["deadline"], count = _timed(lambda: raw_deadline(raw, deadline))
        assert count == size
        raw_notices(raw, overdue, subjects[overdue.key])
        raw.run(_CAP.format(cap=letters))
        raw_t["dispatch"], count = _timed(
            lambda: raw_dispatch(raw, port, overdue.at, letter, sample.message_id)
        )
        assert count == letters
    return {"ours": ours, "raw": raw_t, "letters": letters, "rss_mb": rss}


# --------------------------------------------------------------------------- the report


def _child(backend: str, size: int, port: int) -> dict[str, Any]:
    cap = os.environ.get("RUBRONG_BENCH_DISPATCH")
    argv = [sys.executable, "-m", "bench.national", backend, str(size), str(port), cap or "all"]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{backend} {size:,}: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(n: int) -> Report:
    """Every backend × size in its own child process; a table of ours / raw / growth."""
    sizes, backends = _sizes(n), _backends()
    report = Report(NAME, f"{', '.join(f'{s:,}' for s in sizes)} agreements: {', '.join(backends)}")
    sink = Sink()
    results: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        for backend in backends:
            for size in sizes:
                results[backend, size] = _child(backend, size, sink.port)
    finally:
        sink.close()
    header = f"{'backend':<11}{'phase':<10}{'agreements':>11}{'ours s':>10}{'raw s':>10}"
    lines = [header + f"{'ours/raw':>10}{'growth':>16}"]
    for backend in backends:
        for phase in PHASES:
            previous: tuple[float, int] | None = None
            for size in sizes:
                found = results[backend, size]
                ours, raw = found["ours"][phase], found["raw"][phase]
                count = found["letters"] if phase == "dispatch" else size
                growth = "–"
                if previous is not None:
                    growth = f"×{ours / previous[0]:.1f} for ×{count / previous[1]:g}"
                lines.append(
                    f"{backend:<11}{phase:<10}{count:>11,}{ours:>10.3f}{raw:>10.3f}"
                    f"{ours / raw:>10.2f}{growth:>16}"
                )
                previous = (ours, count)
                if size == sizes[-1]:
                    report.ratios.append(
                        Figure(f"ours/raw {backend} {phase} {count:,}", ours / raw)
                    )
        largest = results[backend, sizes[-1]]
        report.figures.append(
            Figure(f"peak RSS {backend}, {sizes[-1]:,}: load + 5 ticks", largest["rss_mb"], "MB")
        )
        rate = largest["letters"] / largest["ours"]["dispatch"]
        report.figures.append(Figure(f"letters/s {backend} dispatch ours", rate))
    report.notes += lines
    report.notes.append(
        "growth: ours at this size / ours at the previous one, for so many times the "
        "agreements (the same factor is linear); dispatch: the overdue notices (.ics), 4 "
        "SMTP connections; ratios < 1: ours was faster than the raw driver (noise, or the raw "
        "side's own Python work: the chain's json.dumps, building parameter tuples)"
    )
    return report


def main(argv: Sequence[str]) -> int:
    """``python -m bench.national BACKEND SIZE PORT CAP``: one measurement, JSON on stdout."""
    backend, size, port, cap = argv
    found = measure(backend, int(size), int(port), None if cap == "all" else int(cap))
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
