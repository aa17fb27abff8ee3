"""Whole-process latency of the CLI against a Python process that only opens the database.

On a loaded FY2554 database (``cycle_2554.toml``, 93 agreements) each command runs as its own
process, ``n`` times (default 7), in rounds that take every command once, so machine load
slows all alike; the median wall time of each is printed, and its ratio to the baseline
``python -c "import sqlite3; sqlite3.connect(DB).execute('select 1')"`` (the interpreter's own
start-up: the floor any Python CLI stands on):

- ``rubrong --help``; ``rubrong status TH-50 --json``; ``rubrong milestones TH-50 --json``;
  ``rubrong history TH-50 --json``;
- ``rubrong fire TH-50 propose_kpis --as province:TH-50 --data …`` on a throw-away copy of the
  database (copied before timing, one per run);
- ``rubrong status TH-50 --json`` and ``milestones TH-50 --json`` on a database of 10⁴
  agreements (19 groups, 76 provinces, agencies; ``RUBRONG_BENCH_CLI_LARGE``), against the 93:
  one agreement's rows must not cost more because the cycle is national.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import Figure, Report
from bench.cyclegen import generate_cycle
from bench.year import KPIS
from workflow.config.model import Cycle
from workflow.config.validate import parse_cycle, read_cycle_file
from workflow.resources import bundled_cycle
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.usecases.load import load_cycle

NAME = "cli"
SUMMARY = "whole-process latency of rubrong commands vs python -c 'sqlite3 select 1'"
DEFAULT_N = 7  # runs of each command
RUBRONG = str(Path(sys.executable).with_name("rubrong"))


def _large() -> int:
    return int(os.environ.get("RUBRONG_BENCH_CLI_LARGE", "10000"))


def make_database(path: Path, cycle: Cycle, source: str) -> str:
    """A fresh SQLite file with ``cycle`` loaded; its URL."""
    url = f"sqlite:///{path}"
    db = Database(url)
    db.create_schema()
    load_cycle(db, VirtualClock(parse_instant("2010-09-01T09:00")), cycle, source)
    db.dispose()
    return url


def _national(size: int) -> tuple[Cycle, str]:
    """``size`` agreements: all 76 provinces in 19 groups (TH-50 among them), then agencies."""
    source = generate_cycle(cycle_id="2554", groups=19, provinces_per_group=4, agencies=size - 95)
    return parse_cycle(source), source


def _run(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} …: exit {done.returncode}: {done.stderr!r}")
    return elapsed


def _copy(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def run(n: int) -> Report:
    """Every command ``n`` times in alternating rounds; medians and ratios."""
    large = _large()
    report = Report(NAME, f"median of {n} runs per command, whole process, SQLite file")
    with tempfile.TemporaryDirectory(prefix="rubrong-bench-cli-") as scratch:
        folder = Path(scratch)
        base = folder / "fy2554.db"
        path = bundled_cycle()
        url = make_database(base, read_cycle_file(path), path.read_text(encoding="utf-8"))
        big_url = make_database(folder / "national.db", *_national(large))
        data = json.dumps(KPIS, ensure_ascii=False)
        copies = iter(range(n))

        def fire() -> float:
            copy = folder / f"fire-{next(copies)}.db"
            _copy(base, copy)  # before timing
            return _run(
                [RUBRONG, "--db", f"sqlite:///{copy}", "fire", "TH-50", "propose_kpis",
                 "--as", "province:TH-50", "--at", "2010-09-10T10:00", "--data", data]
            )  # fmt: skip

        def command(*argv: str) -> Callable[[], float]:
            return lambda: _run(list(argv))

        probe = f"import sqlite3; sqlite3.connect({str(base)!r}).execute('select 1')"
        commands: dict[str, Callable[[], float]] = {
            "python -c sqlite3 select 1 (baseline)": command(sys.executable, "-c", probe),
            "rubrong --help": command(RUBRONG, "--help"),
            "rubrong status TH-50 --json": command(
                RUBRONG, "--db", url, "status", "TH-50", "--json"
            ),
            "rubrong milestones TH-50 --json": command(
                RUBRONG, "--db", url, "milestones", "TH-50", "--json"
            ),
            "rubrong history TH-50 --json": command(
                RUBRONG, "--db", url, "history", "TH-50", "--json"
            ),
            "rubrong fire TH-50 propose_kpis": fire,
            f"rubrong status TH-50 --json, {large:,} agreements": command(
                RUBRONG, "--db", big_url, "status", "TH-50", "--json"
            ),
            f"rubrong milestones TH-50 --json, {large:,} agreements": command(
                RUBRONG, "--db", big_url, "milestones", "TH-50", "--json"
            ),
        }
        for action in commands.values():  # warm the page cache and .pyc files, untimed
            if action is not fire:
                action()
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(n):
            for name, action in commands.items():
                times[name].append(action())
        shutil.rmtree(folder, ignore_errors=True)
    medians = {name: statistics.median(found) * 1000 for name, found in times.items()}
    names = list(medians)
    baseline = medians[names[0]]
    for name in names:
        report.figures.append(Figure(name, medians[name], "ms"))
    for name in names[1:]:
        report.ratios.append(Figure(f"{name} / baseline", medians[name] / baseline))
    for read in ("status", "milestones"):
        small = medians[f"rubrong {read} TH-50 --json"]
        big = medians[f"rubrong {read} TH-50 --json, {large:,} agreements"]
        report.ratios.append(Figure(f"{read} TH-50: {large:,} agreements / 93", big / small))
    spread = {name: (min(found) * 1000, max(found) * 1000) for name, found in times.items()}
    report.notes.append(
        "min–max ms: "
        + "; ".join(f"{name.split(' (')[0]} {low:.0f}–{high:.0f}" for name, (low, high) in
                    spread.items())
    )  # fmt: skip
    report.notes.append(
        f"{n} rounds, each command once per round; the fire runs on a fresh copy of the loaded "
        "database each time (copied before timing); one untimed warm-up run of each"
    )
    return report
