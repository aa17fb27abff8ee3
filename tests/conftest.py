"""Shared fixtures: real databases (SQLite file, PostgreSQL schema), the CLI, cycle files.

PostgreSQL tests use ``RUBRONG_TEST_PG`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
and give every test a fresh schema. When no server answers, those tests are skipped with the
reason printed (``-ra``); CI sets ``RUBRONG_REQUIRE_PG=1`` so that a missing server fails instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workflow.cli import main
from workflow.config.validate import read_cycle_file
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.usecases.load import load_cycle

ROOT = Path(__file__).resolve().parent.parent
CYCLE_2554 = ROOT / "cycle_2554.toml"
RUBRONG = Path(sys.executable).parent / "rubrong"
PG_BASE = os.environ.get("RUBRONG_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class Result:
    """What one CLI run printed and returned."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as the one JSON document it must be."""
        return json.loads(self.out)


def _pg_available() -> str | None:
    try:
        import psycopg

        dsn = PG_BASE.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means: no usable server here
        return f"PostgreSQL not reachable at {PG_BASE}: {exc}"


_PG_PROBLEM = _pg_available()


def pg_url() -> str:
    """A URL to a brand-new, empty schema of the test PostgreSQL."""
    if _PG_PROBLEM is not None:
        if os.environ.get("RUBRONG_REQUIRE_PG") == "1":
            pytest.fail(_PG_PROBLEM)
        pytest.skip(_PG_PROBLEM)
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = PG_BASE.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store contract test runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rubrong.db'}"
    return pg_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'rubrong.db'}"


class Cli:
    """Runs ``rubrong`` in-process (fast) against one database, in one working directory."""

    def __init__(self, db_url: str, cwd: Path) -> None:
        self.db_url = db_url
        self.cwd = cwd

    def __call__(self, *args: str, smtp: str | None = None) -> Result:
        argv = ["--db", self.db_url]
        if smtp:
            argv += ["--smtp", smtp]
        argv += list(args)
        out, err = io.StringIO(), io.StringIO()
        code = 0
        old = Path.cwd()
        os.chdir(self.cwd)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        finally:
            os.chdir(old)
        return Result(code, out.getvalue(), err.getvalue())

    def subprocess(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> Result:
        """The real installed command in a child process."""
        proc = subprocess.run(
            [str(RUBRONG), "--db", self.db_url, *args],
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(db_url: str, tmp_path: Path) -> Cli:
    """The CLI on each backend."""
    return Cli(db_url, tmp_path)


@pytest.fixture
def sqlite_cli(sqlite_url: str, tmp_path: Path) -> Cli:
    """The CLI on SQLite only."""
    return Cli(sqlite_url, tmp_path)


@pytest.fixture
def loaded(cli: Cli) -> Cli:
    """The CLI with cycle_2554.toml loaded."""
    result = cli("load", str(CYCLE_2554))
    assert result.code == 0, result.err
    return cli


def kpi_set(*, approved: bool = True) -> dict[str, Any]:
    """A valid KPI set for cycle_2554 (weights 50/20/10/20 by dimension)."""
    first = "1.1" if approved else "9.9"
    return {
        "kpis": [
            {
                "id": first,
                "dimension": 1,
                "name_th": "ร้อยละของผลสำเร็จ",
                "unit": "ร้อยละ",
                "direction": "higher",
                "weight": 50,
                "baseline": 70,
                "levels": [60, 65, 70, 75, 80],
            },
            {
                "id": "2.1",
                "dimension": 2,
                "name_th": "ความพึงพอใจ",
                "unit": "ร้อยละ",
                "direction": "higher",
                "weight": 20,
                "baseline": 80,
                "levels": [70, 75, 80, 85, 90],
            },
            {
                "id": "3.1",
                "dimension": 3,
                "name_th": "ระยะเวลาให้บริการ",
                "unit": "วัน",
                "direction": "lower",
                "weight": 10,
                "baseline": 10,
                "levels": [12, 10, 8, 6, 4],
            },
            {
                "id": "4.1",
                "dimension": 4,
                "name_th": "การพัฒนาองค์การ",
                "unit": "ระดับ",
                "direction": "higher",
                "weight": 20,
                "baseline": 3,
                "levels": [1, 2, 3, 4, 5],
            },
        ]
    }


@pytest.fixture
def kpis_json() -> str:
    """A valid KPI set as --data text."""
    return json.dumps(kpi_set(), ensure_ascii=False)


@contextlib.contextmanager
def env_var(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the duration of a block."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """An empty database at the newest schema."""
    database = Database(db_url)
    database.create_schema()
    yield database
    database.dispose()


@pytest.fixture
def loaded_db(db: Database) -> Database:
    """cycle_2554 loaded (an agreement per province, all ``drafted``)."""
    cycle = read_cycle_file(CYCLE_2554)
    outcome = load_cycle(db, VirtualClock(parse_instant("2010-09-01")), cycle, "store-contract")
    assert outcome.action == "created"
    return db
