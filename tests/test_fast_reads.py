"""``status`` and ``milestones`` on the bare database driver (workflow/store/dbapi.py): the same
rows
as the web and the API (which read over SQLAlchemy), on SQLite and PostgreSQL; one agreement's
read walks that agreement's rows only; and a database the fast path cannot take still answers
through ``Database``, as before.

How long the commands take is bench/cli.py's business, not a test's.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CYCLE_2554, Cli, kpi_set
from tests.support.served import prepare, serve
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store import read_views
from workflow.store.database import Database
from workflow.store.dbapi import DriverReader, driver_reader, postgres_conninfo, sqlite_path
from workflow.store.read_history import history_entries
from workflow.store.views import milestone_rows, status_rows
from workflow.web import create_app

KPIS = json.dumps(kpi_set(), ensure_ascii=False)
# (arguments after the command) → what is compared
SELECTIONS = [[], ["TH-50"], ["TH-50", "north-upper-1", "TH-51"], ["--cycle", "2554", "TH-51"]]


def _events(cli: Cli) -> None:
    """A year that gives the rows something to show: met, late, missed, waived, pending."""
    for args in (
        ["TH-50", "propose_kpis", "--as", "province:TH-50", "--at", "2010-09-10T10:00"],
        ["TH-51", "propose_kpis", "--as", "province:TH-51", "--at", "2010-09-20T10:00"],
    ):
        assert cli("fire", *args, "--data", KPIS).code == 0
    for org in ("TH-50", "TH-51"):
        assert cli("fire", org, "agree", "--as", "admin", "--at", "2010-09-28T10:00").code == 0
        assert cli("fire", org, "sign", "--as", "admin", "--at", "2010-11-01T10:00").code == 0
    waive = json.dumps({"milestone": "kpi_template", "reason": "flood"})
    at = "2010-12-01T10:00"
    assert cli("fire", "TH-51", "waive", "--as", "admin", "--at", at, "--data", waive).code == 0
    assert cli("tick", "--now", "2011-05-03T00:00", "--no-send").code == 0
    late = ["TH-50", "submit_sar6", "--as", "province:TH-50", "--at", "2011-05-03T10:00"]
    assert cli("fire", *late).code == 0


@pytest.fixture
def year(db_url: str, tmp_path: Path) -> tuple[Cli, str]:
    """cycle_2554 with a few events and a tick; the CLI and an auditor's API token."""
    token = prepare(db_url, VirtualClock(parse_instant("2010-09-01T09:00")), {"aud": "auditor"})
    cli = Cli(db_url, tmp_path)
    _events(cli)
    return cli, token["aud"]


def _cli_rows(cli: Cli, command: str, selection: list[str]) -> Any:
    done = cli.subprocess(command, *selection, "--json")
    assert done.code == 0, done.err
    return done.json()


def test_the_cli_prints_the_rows_the_web_and_the_api_read(year: tuple[Cli, str]) -> None:
    cli, token = year
    db = Database(cli.db_url)
    try:
        for selection in SELECTIONS:
            names = [arg for arg in selection if not arg.startswith("--") and arg != "2554"]
            with db.read() as conn:
                assert _cli_rows(cli, "status", selection) == status_rows(conn, "2554", names)
                assert _cli_rows(cli, "milestones", selection) == milestone_rows(conn, None, names)
    finally:
        db.dispose()

    th50 = _cli_rows(cli, "status", ["TH-50"])
    assert th50[0]["state"] == "sar6_submitted"
    assert th50[0]["next_due"] == {"milestone": "esar9", "due": "2011-07-16"}
    assert th50[0]["overdue"] == ["kpi_template", "kpi_audit"]
    by_milestone = {(r["agreement"], r["milestone"]): r for r in _cli_rows(cli, "milestones", [])}
    assert by_milestone["TH-50", "sar6"]["status"] == "late"
    assert by_milestone["TH-50", "sar6"]["met_at"] == "2011-05-03T10:00:00+07:00"
    assert by_milestone["TH-50", "sar6"]["late_business_days"] == 2  # 2 and 3 May
    assert by_milestone["TH-51", "kpi_template"]["status"] == "waived"
    assert by_milestone["TH-52", "propose_kpis"]["status"] == "missed"

    with (
        serve(create_app(cli.db_url, VirtualClock(parse_instant("2011-05-04")))) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as api,
    ):
        assert api.get("/api/v1/agreements").json() == _cli_rows(cli, "status", [])
        assert [api.get("/api/v1/agreements/TH-50").json()] == th50
        milestones = api.get("/api/v1/agreements/TH-51/milestones").json()
        assert milestones == _cli_rows(cli, "milestones", ["TH-51"])


def test_unknown_names_and_cycles_are_refused_as_before(year: tuple[Cli, str]) -> None:
    cli, _ = year
    for command in ("status", "milestones"):
        unknown = cli.subprocess(command, "TH-50", "TH-99", "--json")
        assert (unknown.code, unknown.out) == (2, "")
        assert unknown.err == "rubrong: unknown agreement 'TH-99' in cycle 2554\n"
        cycle = cli.subprocess("--cycle", "2599", command, "--json")
        assert (cycle.code, cycle.err) == (2, "rubrong: unknown cycle '2599'\n")


class PlanReader:
    """A ``Reader`` that records SQLite's plan for every statement before running it."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.inner = DriverReader(connection, "named")
        self.plans: list[str] = []

    def rows(self, sql: str, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        plan = self.inner.rows("EXPLAIN QUERY PLAN " + sql, params)
        self.plans.extend(str(row[-1]) for row in plan)
        return self.inner.rows(sql, params)

    def stream(self, sql: str, params: Mapping[str, Any]) -> Iterator[Sequence[Any]]:
        plan = self.inner.rows("EXPLAIN QUERY PLAN " + sql, params)
        self.plans.extend(str(row[-1]) for row in plan)
        return self.inner.stream(sql, params)


def test_one_agreement_reads_its_own_statuses_by_the_primary_key(sqlite_cli: Cli) -> None:
    assert sqlite_cli("load", str(CYCLE_2554)).code == 0
    path = sqlite_path(sqlite_cli.db_url)
    assert path is not None
    with closing(sqlite3.connect(path)) as connection:
        reader = PlanReader(connection)
        assert read_views.status_rows(reader, None, ["TH-50"])[0]["agreement"] == "TH-50"
        assert read_views.milestone_rows(reader, None, ["TH-50"])
        statuses = [plan for plan in reader.plans if plan.startswith(("SEARCH s", "SCAN s"))]
        assert len(statuses) == 3, reader.plans  # next due, overdue, milestones
        for plan in statuses:
            assert "sqlite_autoindex_milestone_status_1 (agreement_pk=?)" in plan, reader.plans
        # The only table read whole is ``cycles`` (a row per loaded cycle: which is latest).
        scans = {plan for plan in reader.plans if plan.startswith("SCAN")}
        assert scans == {"SCAN cycles"}, reader.plans
        # One agreement's history, as of a time: by the (cycle_id, agreement) index.
        reader.plans.clear()
        assert list(history_entries(reader, None, "TH-50", 1)) == []
        history = [plan for plan in reader.plans if "history" in plan]
        assert history and all("ix_history_agreement" in plan for plan in history), reader.plans


def test_the_urls_the_driver_takes_and_leaves() -> None:
    assert sqlite_path("sqlite:///rel/r.db") == "rel/r.db"
    assert sqlite_path("sqlite:////abs/my%20r.db") == "/abs/my r.db"
    assert sqlite_path("sqlite+pysqlite:////abs/r.db") == "/abs/r.db"
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///r.db?timeout=5", "mysql://h/d"):
        assert sqlite_path(url) is None, url
    assert postgres_conninfo("postgresql+psycopg://u@h:5/d?options=-cx%3Dy") == (
        "postgresql://u@h:5/d?options=-cx%3Dy"
    )
    assert postgres_conninfo("postgresql://u@h/d") == "postgresql://u@h/d"
    assert postgres_conninfo("postgresql+psycopg2://u@h/d") is None


def test_what_the_driver_cannot_take_is_left_to_database(tmp_path: Path) -> None:
    """A missing file (to create), a schema that is not the newest (to refuse), a file that is
    no database, and an in-memory database: no reader, so ``Database`` answers as before."""
    missing = tmp_path / "missing.db"
    with driver_reader(f"sqlite:///{missing}") as reader:
        assert reader is None
    assert not missing.exists()  # not created by the attempt
    old = tmp_path / "old.db"
    with closing(sqlite3.connect(old)) as connection, connection:
        connection.execute("CREATE TABLE alembic_version (version_num TEXT)")
        connection.execute("INSERT INTO alembic_version VALUES ('0001')")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    for url in (f"sqlite:///{old}", f"sqlite:///{junk}", "sqlite://", "sqlite:///:memory:"):
        with driver_reader(url) as reader:
            assert reader is None, url
    cli = Cli(f"sqlite:///{junk}", tmp_path)
    refused = cli.subprocess("status", "--json")
    assert refused.code == 1 and "file is not a database" in refused.err, refused.err
