"""Reading and checking a long history: ``history --as-of`` and ``verify`` at 10⁶ entries.

Set-up (not timed): a SQLite file made by ``Database(url).create_schema()`` with FY2554 loaded
(``cycle_2554.toml``, 93 agreements), then ``n`` valid hash-chained entries (default 10⁶;
``RUBRONG_BENCH_HISTORY=100000`` for a quick run) bulk-inserted with raw ``sqlite3``, each hash
computed in Python per CONTRACT.md: the 93 agreements' events in turn, one every ``STEP`` seconds
from 1 Sep 2010, so the chain spans the fiscal year. Measured:

1. ``history TH-50 --as-of MID`` (half the year): the library (``iter_history_rows`` consumed,
   median of ``RUNS``) and the whole CLI process minus ``rubrong --help``'s (start-up), medians of
   alternating runs;
2. ``history --as-of END --json`` of every entry through the CLI into /dev/null: entries/s and the
   process's peak RSS (a wrapper child reads ``RUSAGE_CHILDREN``), which must not grow with n;
3. ``verify`` (``workflow.store.history.verify``) against a plain-Python recompute of the same chain
   (``sqlite3`` rows, ``json.dumps``, ``hashlib``), alternating: entries/s and the time ratio.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import Figure, Report
from bench.cli import RUBRONG, make_database
from workflow.config.validate import read_cycle_file
from workflow.resources import bundled_cycle
from workflow.rules.timeutil import format_instant, parse_instant
from workflow.store.chain import GENESIS
from workflow.store.database import Database
from workflow.store.history import verify
from workflow.store.views import iter_history_rows

NAME = "audit"
SUMMARY = "history --as-of and verify over 10⁶ entries (library, CLI, RSS) vs plain Python"
DEFAULT_N = 1_000_000  # entries; RUBRONG_BENCH_HISTORY overrides
RUNS = 5
START = parse_instant("2010-09-01T09:00")
BANGKOK = dt.timezone(dt.timedelta(hours=7))
EVENTS = ("propose_kpis", "agree", "sign", "publish", "submit_kpi_template", "send_kpi_audit")
STATES = ("drafted", "proposed", "agreed", "signed", "signed", "template_submitted", "audited")
_INSERT = (
    "INSERT INTO history (seq, cycle_id, agreement, kind, event, from_state, to_state, actor, at, "
    "recorded_at, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _entries(parties: list[str], count: int, step: int) -> Iterator[tuple[Any, ...]]:
    """``count`` chained rows: the parties in turn, cycling through six events."""
    prev = GENESIS
    data = {"note": "bench"}
    stored = json.dumps(data, sort_keys=True, ensure_ascii=False)
    for seq in range(1, count + 1):
        org = parties[(seq - 1) % len(parties)]
        turn = ((seq - 1) // len(parties)) % len(EVENTS)
        at = START + seq * step
        entry = {
            "seq": seq, "cycle": "2554", "agreement": org, "kind": "event",
            "event": EVENTS[turn], "from": STATES[turn], "to": STATES[turn + 1], "actor": "admin",
            "at": format_instant(at), "recorded_at": format_instant(at), "data": data,
            "prev_hash": prev,
        }  # fmt: skip
        payload = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest()
        yield (seq, "2554", org, "event", EVENTS[turn], STATES[turn], STATES[turn + 1], "admin",
               at, at, stored, prev, digest)  # fmt: skip
        prev = digest


def _fill(path: Path, count: int, step: int) -> None:
    """Bulk-insert the chain (one transaction, batches of 50,000)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    parties = [row[0] for row in conn.execute("SELECT org_id FROM agreements ORDER BY pk")]
    conn.execute("BEGIN")
    batch: list[tuple[Any, ...]] = []
    for row in _entries(parties, count, step):
        batch.append(row)
        if len(batch) == 50_000:
            conn.executemany(_INSERT, batch)
            batch.clear()
    conn.executemany(_INSERT, batch)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def plain_verify(path: Path) -> tuple[int, str]:
    """The chain recomputed with nothing but ``sqlite3``, ``json`` and ``hashlib``."""
    conn = sqlite3.connect(path)
    prev, expected = GENESIS, 1
    rows = conn.execute(
        "SELECT seq, cycle_id, agreement, kind, event, from_state, to_state, actor, at, "
        "recorded_at, data, prev_hash, hash FROM history ORDER BY seq"
    )
    for seq, cycle, org, kind, event, before, after, actor, at, recorded, data, back, h in rows:
        assert seq == expected and back == prev, seq
        entry = {
            "seq": seq, "cycle": cycle, "agreement": org, "kind": kind, "event": event,
            "from": before, "to": after, "actor": actor,
            "at": dt.datetime.fromtimestamp(at, BANGKOK).isoformat(),
            "recorded_at": dt.datetime.fromtimestamp(recorded, BANGKOK).isoformat(),
            "data": json.loads(data), "prev_hash": back,
        }  # fmt: skip
        payload = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest() == h, seq
        prev, expected = h, expected + 1
    conn.close()
    return expected - 1, prev


def _process(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:5])} …: exit {done.returncode}: {done.stderr!r}")
    return time.perf_counter() - started


_WRAPPER = """
import resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
elapsed = time.perf_counter() - started
print(done.returncode, elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _export(argv: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one process writing to /dev/null."""
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv], capture_output=True, text=True, check=True
    ).stdout.split()
    if out[0] != "0":
        raise RuntimeError(f"{' '.join(argv[:5])} …: exit {out[0]}")
    return float(out[1]), int(out[2]) / 1024


def _size(n: int) -> int:
    given = os.environ.get("RUBRONG_BENCH_HISTORY")
    return int(given) if given else n


def run(n: int) -> Report:
    """Fill a chain of ``n`` entries, then time reading and verifying it."""
    count = _size(n)
    step = max(1, 365 * 86_400 // count)
    report = Report(NAME, f"a history of {count:,} entries (93 agreements), SQLite file")
    with tempfile.TemporaryDirectory(prefix="rubrong-bench-audit-") as scratch:
        path = Path(scratch) / "audit.db"
        cycle_file = bundled_cycle()
        source = cycle_file.read_text(encoding="utf-8")
        url = make_database(path, read_cycle_file(cycle_file), source)
        started = time.perf_counter()
        _fill(path, count, step)
        filled = time.perf_counter() - started
        middle, end = START + (count // 2) * step, START + count * step
        mid_text, end_text = str(format_instant(middle)), str(format_instant(end))
        db = Database(url)

        def library() -> tuple[float, int]:
            began = time.perf_counter()
            with db.read() as conn:
                found = sum(1 for _ in iter_history_rows(conn, None, "TH-50", middle))
            return time.perf_counter() - began, found

        library()  # warm: the page cache, the stored cycle parsed once per process as in a CLI
        lib_times, cli_times, help_times = [], [], []
        history = [RUBRONG, "--db", url, "history", "TH-50", "--as-of", mid_text, "--json"]
        for _ in range(RUNS):
            seconds, found = library()
            lib_times.append(seconds)
            cli_times.append(_process(history))
            help_times.append(_process([RUBRONG, "--help"]))
        everything = [RUBRONG, "--db", url, "history", "--as-of", end_text, "--json"]
        export_seconds, export_rss = _export(everything)
        ours_verify, plain = [], []
        for _ in range(2):  # alternating
            began = time.perf_counter()
            with db.read() as conn:
                verification = verify(conn)
            ours_verify.append(time.perf_counter() - began)
            began = time.perf_counter()
            entries, head = plain_verify(path)
            plain.append(time.perf_counter() - began)
            assert verification.ok and verification.entries == entries == count, verification
            assert verification.head == head
        db.dispose()
    lib, cli, start_up = (statistics.median(t) for t in (lib_times, cli_times, help_times))
    ours_v, plain_v = min(ours_verify), min(plain)
    report.figures += [
        Figure(f"history TH-50 --as-of mid-year, library ({found:,} entries)", lib * 1000, "ms"),
        Figure("same, whole CLI process", cli * 1000, "ms"),
        Figure("same, CLI minus `rubrong --help` (start-up)", (cli - start_up) * 1000, "ms"),
        Figure(f"history --as-of --json, all {count:,} → /dev/null", export_seconds, "s"),
        Figure("  entries/s", count / export_seconds),
        Figure("  peak RSS of that process", export_rss, "MB"),
        Figure("verify, ours (workflow.store.history.verify)", count / ours_v, "entries/s"),
        Figure("verify, plain Python (sqlite3 + json + hashlib)", count / plain_v, "entries/s"),
    ]
    report.ratios.append(Figure("verify ours/plain (time)", ours_v / plain_v))
    report.notes.append(
        f"set-up: {count:,} chained entries computed and inserted in {filled:.1f} s; medians of "
        f"{RUNS} alternating runs (library, CLI, --help); verify: best of 2 alternating runs each"
    )
    return report
