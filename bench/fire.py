"""``fire`` throughput on SQLite against raw ``sqlite3`` doing the same writes.

A generated cycle (``workflow.cyclegen``) with N agencies is loaded into a fresh SQLite file;
then, through ``workflow.engine.fire`` (in process, no CLI start-up), each agency

1. proposes its KPIs (``propose_kpis``: validates the KPI set, meets the deliverable, stores a
   KPI version, enqueues a receipt, appends the history entry), and then
2. is agreed (``agree``: the version-checked UPDATE of the agreement plus the history entry:
   the shape of the baseline).

The baseline, measured in the same run: raw ``sqlite3`` (WAL, synchronous=NORMAL, the same as
the store) doing per fire one transaction of: read the agreement row, a version-checked UPDATE of
it, read the chain tip, compute the next hash-chained entry in Python exactly as CONTRACT.md
defines it, INSERT it, COMMIT.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from bench import Figure, Report, Stopwatch
from workflow.clock import VirtualClock
from workflow.config.validate import parse_cycle
from workflow.cyclegen import generate_cycle
from workflow.engine import FireRequest, fire
from workflow.history import verify
from workflow.loading import load_cycle
from workflow.store import Database
from workflow.timeutil import parse_instant

NAME = "fire"
SUMMARY = "engine fire throughput vs raw sqlite3 (version-checked UPDATE + hash-chained INSERT)"
DEFAULT_N = 2000

CYCLE_ID = "2560"  # fiscal year 2016-10-01 … 2017-09-30; propose_kpis due 2016-09-13
START = parse_instant("2016-09-01T09:00")
BANGKOK = dt.timezone(dt.timedelta(hours=7))
GENESIS = "0" * 64
KPIS: dict[str, Any] = {
    "kpis": [
        {"id": "1.1", "dimension": 1, "name_th": "ร้อยละของผลสำเร็จ", "unit": "ร้อยละ",
         "direction": "higher", "weight": 50, "baseline": 70, "levels": [60, 65, 70, 75, 80]},
        {"id": "2.1", "dimension": 2, "name_th": "ความพึงพอใจ", "unit": "ร้อยละ",
         "direction": "higher", "weight": 20, "baseline": 80, "levels": [70, 75, 80, 85, 90]},
        {"id": "3.1", "dimension": 3, "name_th": "ระยะเวลาให้บริการ", "unit": "วัน",
         "direction": "lower", "weight": 10, "baseline": 10, "levels": [12, 10, 8, 6, 4]},
        {"id": "4.1", "dimension": 4, "name_th": "การพัฒนาองค์การ", "unit": "ระดับ",
         "direction": "higher", "weight": 20, "baseline": 3, "levels": [1, 2, 3, 4, 5]},
    ]
}  # fmt: skip


def _ours(directory: Path, n: int, report: Report) -> dict[str, float]:
    parse, load = Stopwatch(), Stopwatch()
    with parse.running():
        cycle = parse_cycle(generate_cycle(cycle_id=CYCLE_ID, groups=0, agencies=n))
    db = Database(f"sqlite:///{directory / 'ours.db'}")
    db.create_schema()
    clock = VirtualClock(START)
    with load.running():
        load_cycle(db, clock, cycle, "bench")
    agencies = [party.id for party in cycle.parties()]
    assert len(agencies) == n, len(agencies)
    rates: dict[str, float] = {}
    for event in ("propose_kpis", "agree"):
        watch = Stopwatch()
        with watch.running():
            for agency in agencies:
                clock.set(clock.now() + 1)
                role = f"agency:{agency}" if event == "propose_kpis" else "committee"
                data = KPIS if event == "propose_kpis" else None
                fire(db, clock, FireRequest(agency, event, role, None, data))
        rates[event] = watch.rate(n)
    with db.read() as conn:
        verification = verify(conn)
    db.dispose()
    assert verification.ok and verification.entries == 2 * n, verification
    report.notes.append(
        f"set-up: {n:,} agencies parsed in {parse.seconds:.2f} s, loaded in {load.seconds:.2f} s; "
        f"our chain of {verification.entries:,} entries verified"
    )
    return rates


def _instant(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, BANGKOK).isoformat()


def _raw(directory: Path, n: int) -> float:
    conn = sqlite3.connect(directory / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE agreements (pk INTEGER PRIMARY KEY, org_id TEXT UNIQUE, state TEXT, "
        "version INTEGER, last_event_at INTEGER)"
    )
    conn.execute(
        "CREATE TABLE history (seq INTEGER PRIMARY KEY, cycle_id TEXT, agreement TEXT, kind TEXT, "
        "event TEXT, from_state TEXT, to_state TEXT, actor TEXT, at INTEGER, recorded_at INTEGER, "
        "data TEXT, prev_hash TEXT, hash TEXT)"
    )
    orgs = [f"agency-{number:06d}" for number in range(1, n + 1)]
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO agreements (org_id, state, version) VALUES (?, 'proposed', 0)",
        [(org,) for org in orgs],
    )
    conn.execute("COMMIT")
    watch, now = Stopwatch(), START
    with watch.running():
        for org in orgs:
            now += 1
            conn.execute("BEGIN IMMEDIATE")
            pk, state, version = conn.execute(
                "SELECT pk, state, version FROM agreements WHERE org_id = ?", (org,)
            ).fetchone()
            updated = conn.execute(
                "UPDATE agreements SET state = 'agreed', version = ?, last_event_at = ? "
                "WHERE pk = ? AND version = ?",
                (version + 1, now, pk, version),
            )
            assert updated.rowcount == 1
            tip = conn.execute("SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (0, GENESIS) if tip is None else tip
            entry = {
                "seq": seq + 1, "cycle": CYCLE_ID, "agreement": org, "kind": "event",
                "event": "agree", "from": state, "to": "agreed", "actor": "committee",
                "at": _instant(now), "recorded_at": _instant(now), "data": {}, "prev_hash": prev,
            }  # fmt: skip
            payload = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            digest = hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest()
            conn.execute(
                "INSERT INTO history VALUES (?, ?, ?, 'event', 'agree', ?, 'agreed', 'committee', "
                "?, ?, '{}', ?, ?)",
                (seq + 1, CYCLE_ID, org, state, now, now, prev, digest),
            )
            conn.execute("COMMIT")
    conn.close()
    return watch.rate(n)


def run(n: int) -> Report:
    """Measure ``n`` fires of each kind through the engine, and ``n`` raw ones."""
    report = Report(NAME, f"{n:,} fires per event on distinct agreements, SQLite file, WAL")
    with tempfile.TemporaryDirectory(prefix="rubrong-bench-") as scratch:
        directory = Path(scratch)
        raw = _raw(directory, n)
        ours = _ours(directory, n, report)
    report.figures += [
        Figure("fires/s ours (agree: UPDATE + history)", ours["agree"]),
        Figure("fires/s ours (propose_kpis: + KPI set, receipt)", ours["propose_kpis"]),
        Figure("fires/s raw (sqlite3: UPDATE + hash-chained INSERT)", raw),
    ]
    report.ratios += [
        Figure("ratio ours/raw (agree)", ours["agree"] / raw),
        Figure("ratio ours/raw (propose_kpis)", ours["propose_kpis"] / raw),
    ]
    return report
