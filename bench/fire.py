"""``fire`` throughput on SQLite against raw ``sqlite3`` doing the same writes.

A generated cycle (``bench.cyclegen``) with N agencies is loaded into a fresh SQLite file;
then, through ``workflow.usecases.fire.fire`` (in process, no CLI start-up), each agency

1. proposes its KPIs (``propose_kpis``: validates the KPI set, meets the deliverable, stores a
   KPI version, enqueues a receipt, appends the history entry), and then
2. is agreed (``agree``: the version-checked UPDATE of the agreement plus the history entry:
   the shape of the baseline).

The baseline, measured in the same run: raw ``sqlite3`` (WAL, synchronous=NORMAL, the same as
the store) doing per fire one transaction of: read the agreement row, a version-checked UPDATE of
it, read the chain tip, compute the next hash-chained entry in Python exactly as CONTRACT.md
defines it, INSERT it, COMMIT. The two take turns (``ROUNDS`` per event), so a busy machine
slows both alike and the ratios stay comparable from run to run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench import Figure, Report, Stopwatch
from bench.cyclegen import generate_cycle
from workflow.config.validate import parse_cycle
from workflow.rules.clock import VirtualClock
from workflow.rules.kpis import kpis_to_json, parse_kpi_set
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.history import verify
from workflow.usecases.fire import FireRequest, fire
from workflow.usecases.load import load_cycle

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


ROUNDS = 10  # ours and the baseline take turns, so both meet the same machine load


class _Ours:
    """The engine side: a loaded cycle of N agencies in its own SQLite file, one Database."""

    def __init__(self, directory: Path, n: int, report: Report) -> None:
        parse, load = Stopwatch(), Stopwatch()
        with parse.running():
            cycle = parse_cycle(generate_cycle(cycle_id=CYCLE_ID, groups=0, agencies=n))
        self.db = Database(f"sqlite:///{directory / 'ours.db'}")
        self.db.create_schema()
        self.clock = VirtualClock(START)
        with load.running():
            load_cycle(self.db, self.clock, cycle, "bench")
        self.agencies = [party.id for party in cycle.parties()]
        assert len(self.agencies) == n, len(self.agencies)
        self.n = n
        report.notes.append(
            f"set-up: {n:,} agencies parsed in {parse.seconds:.2f} s, "
            f"loaded in {load.seconds:.2f} s"
        )

    def fire(self, event: str, agencies: list[str]) -> None:
        """``event`` on each agency, through ``workflow.usecases.fire.fire``."""
        for agency in agencies:
            self.clock.set(self.clock.now() + 1)
            role = f"agency:{agency}" if event == "propose_kpis" else "committee"
            data = KPIS if event == "propose_kpis" else None
            fire(self.db, self.clock, FireRequest(agency, event, role, None, data))

    def close(self, report: Report) -> None:
        """Verify the chain (every fire appended exactly one entry) and let go."""
        with self.db.read() as conn:
            verification = verify(conn)
        self.db.dispose()
        assert verification.ok and verification.entries == 2 * self.n, verification
        report.notes.append(f"our chain of {verification.entries:,} entries verified")


def _instant(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, BANGKOK).isoformat()


_TIP = "SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1"
_UPDATE = (
    "UPDATE agreements SET state = 'agreed', version = ?, last_event_at = ? "
    "WHERE pk = ? AND version = ?"
)
_INSERT = (
    "INSERT INTO history (seq, cycle_id, agreement, kind, event, from_state, to_state, actor, "
    "at, recorded_at, data, prev_hash, hash) "
    "VALUES (?, ?, ?, 'event', 'agree', ?, 'agreed', 'committee', ?, ?, '{}', ?, ?)"
)
_READ_MINIMAL = "SELECT pk, state, version FROM agreements WHERE org_id = ?"
_READ_SAME = (  # what fire reads for agree: the agreement with its organisation and cycle
    "SELECT a.pk, a.state, a.version, a.published, a.kpis, a.kpi_version, a.change_request, "
    "a.results, a.tier, a.last_event_at, o.kind, o.group_id, o.name_th, o.name_en, o.email, "
    "o.supervisor_email, c.version, c.content_hash, c.last_tick FROM cycles c "
    "JOIN agreements a ON a.cycle_id = c.id AND a.org_id = ? "
    "JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id WHERE c.id = ?"
)


class _Raw:
    """A baseline: raw ``sqlite3`` (WAL, synchronous=NORMAL, as the store), per fire one
    transaction of: read the agreement row, a version-checked UPDATE of it, read the chain tip,
    compute the next hash-chained entry in Python exactly as CONTRACT.md defines it, INSERT it,
    COMMIT.

    ``same_schema=False`` (the reference): minimal tables of just the columns written.
    ``same_schema=True``: our own schema and rows (``create_schema``, the generated cycle
    loaded, every agreement proposed with the bench's KPI set) and fire's own read (agreement,
    organisation, cycle): what the same writes cost SQLite itself, without the engine.
    """

    def __init__(self, path: Path, count: int, *, same_schema: bool) -> None:
        if same_schema:
            _prepare_same_schema(path, count)
        self.conn = sqlite3.connect(path, isolation_level=None)
        conn = self.conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        self.orgs = [f"agency-{number:06d}" for number in range(1, count + 1)]
        self.read = _READ_SAME if same_schema else _READ_MINIMAL
        self.read_tail: tuple[str, ...] = (CYCLE_ID,) if same_schema else ()
        if not same_schema:
            conn.execute(
                "CREATE TABLE agreements (pk INTEGER PRIMARY KEY, org_id TEXT UNIQUE, "
                "state TEXT, version INTEGER, last_event_at INTEGER)"
            )
            conn.execute(
                "CREATE TABLE history (seq INTEGER PRIMARY KEY, cycle_id TEXT, agreement TEXT, "
                "kind TEXT, event TEXT, from_state TEXT, to_state TEXT, actor TEXT, at INTEGER, "
                "recorded_at INTEGER, data TEXT, prev_hash TEXT, hash TEXT)"
            )
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO agreements (org_id, state, version) VALUES (?, 'proposed', 0)",
                [(org,) for org in self.orgs],
            )
            conn.execute("COMMIT")
        self.next, self.now = 0, START

    def fire(self, count: int) -> None:
        """``count`` agree-shaped transactions on the next agreements."""
        conn, read, tail = self.conn, self.read, self.read_tail
        for org in self.orgs[self.next : self.next + count]:
            self.now += 1
            now = self.now
            conn.execute("BEGIN IMMEDIATE")
            pk, state, version, *_ = conn.execute(read, (org, *tail)).fetchone()
            updated = conn.execute(_UPDATE, (version + 1, now, pk, version))
            assert updated.rowcount == 1
            tip = conn.execute(_TIP).fetchone()
            seq, prev = (0, GENESIS) if tip is None else tip
            entry = {
                "seq": seq + 1, "cycle": CYCLE_ID, "agreement": org, "kind": "event",
                "event": "agree", "from": state, "to": "agreed", "actor": "committee",
                "at": _instant(now), "recorded_at": _instant(now), "data": {}, "prev_hash": prev,
            }  # fmt: skip
            payload = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            digest = hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest()
            conn.execute(_INSERT, (seq + 1, CYCLE_ID, org, state, now, now, prev, digest))
            conn.execute("COMMIT")
        self.next += count

    def close(self) -> None:
        """Let go of the connection."""
        self.conn.close()


def _prepare_same_schema(path: Path, count: int) -> None:
    """Our schema with ``count`` agencies loaded, each agreement as ``propose_kpis`` left it."""
    db = Database(f"sqlite:///{path}")
    db.create_schema()
    cycle = parse_cycle(generate_cycle(cycle_id=CYCLE_ID, groups=0, agencies=count))
    load_cycle(db, VirtualClock(START), cycle, "bench")
    stored = json.dumps(kpis_to_json(parse_kpi_set(KPIS, cycle.scoring)), ensure_ascii=False)
    with db.write() as conn:
        conn.execute(
            text(
                "UPDATE agreements SET state = 'proposed', version = 1, kpis = :k, kpi_version = 1"
            ),
            {"k": stored},
        )
    db.dispose()


def run(n: int) -> Report:
    """Measure ``n`` fires of each kind through the engine, and ``2n`` of each baseline, in
    turns (``ROUNDS`` per event), so that a busy machine slows all three alike."""
    report = Report(NAME, f"{n:,} fires per event on distinct agreements, SQLite file, WAL")
    with tempfile.TemporaryDirectory(prefix="rubrong-bench-") as scratch:
        directory = Path(scratch)
        minimal = _Raw(directory / "raw.db", 2 * n, same_schema=False)
        same = _Raw(directory / "raw-same.db", 2 * n, same_schema=True)
        ours = _Ours(directory, n, report)
        chunk = -(-n // ROUNDS)
        rates: dict[str, tuple[float, float, float]] = {}
        for event in ("propose_kpis", "agree"):
            watches = (Stopwatch(), Stopwatch(), Stopwatch())
            for start in range(0, n, chunk):
                batch = ours.agencies[start : start + chunk]
                with watches[1].running():
                    minimal.fire(len(batch))
                with watches[2].running():
                    same.fire(len(batch))
                with watches[0].running():
                    ours.fire(event, batch)
            rates[event] = (watches[0].rate(n), watches[1].rate(n), watches[2].rate(n))
        minimal.close()
        same.close()
        ours.close(report)
    agree, propose = rates["agree"], rates["propose_kpis"]
    report.figures += [
        Figure("fires/s ours (agree: UPDATE + history)", agree[0]),
        Figure("fires/s ours (propose_kpis: + KPI set, receipt)", propose[0]),
        Figure("fires/s raw (sqlite3: UPDATE + hash-chained INSERT)", _mean(agree[1], propose[1])),
        Figure("fires/s raw on our schema (same rows, same read)", _mean(agree[2], propose[2])),
    ]
    report.ratios += [
        Figure("ratio ours/raw (agree)", agree[0] / agree[1]),
        Figure("ratio ours/raw (propose_kpis)", propose[0] / propose[1]),
        Figure("ratio ours/raw on our schema (agree)", agree[0] / agree[2]),
    ]
    report.notes.append(
        f"ours and the baselines ran in {ROUNDS} alternating rounds per event; each ratio is "
        "against the baseline's rate in that event's rounds"
    )
    return report


def _mean(first: float, second: float) -> float:
    """The overall rate of two equally long series measured at these rates."""
    return 2 / (1 / first + 1 / second)
