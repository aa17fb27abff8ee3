"""A private PostgreSQL server for fault tests: started, stopped and restarted at will.

The fixtures ``private_pg`` (one server per test process) and ``pg`` (that server, running) are
defined here; a test module that uses them imports both by name (``# noqa: F401``).

The shared server (127.0.0.1:5432) is never touched: ``PrivatePostgres`` runs Debian's own
binaries (``/usr/lib/postgresql/*/bin``, or ``RUBRONG_PG_BIN``) on a spare port with a data
directory in a fresh temporary directory, as the ``postgres`` user when the tests run as root
(``runuser -u postgres --``; PostgreSQL refuses to run as root), else as the current user.
Durability is switched off (``fsync``, ``synchronous_commit``): nothing here outlives the test
session, and a restart with ``-m fast`` still loses no committed transaction.

When the binaries are missing the tests that need them are skipped with the reason printed, or
fail when ``RUBRONG_REQUIRE_PG=1`` (CI).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

BIN_ENV = "RUBRONG_PG_BIN"
START_TIMEOUT = 60


def find_bin() -> Path | None:
    """The newest PostgreSQL server binary directory on this machine (or ``RUBRONG_PG_BIN``)."""
    if os.environ.get(BIN_ENV):
        return Path(os.environ[BIN_ENV])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: [int(part) for part in Path(path).parts[-3].split(".") if part.isdigit()],
    )
    return Path(found[-1]).parent if found else None


def problem() -> str | None:
    """Why a private server cannot be started here, or None."""
    bindir = find_bin()
    if bindir is None or not (bindir / "pg_ctl").exists():
        return "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing (PostgreSQL refuses to run as root)"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


def spare_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    """One throw-away PostgreSQL cluster: ``start``, ``stop``, ``restart``, ``database``."""

    def __init__(self) -> None:
        bindir = find_bin()
        assert bindir is not None, problem()
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="rubrong-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        self.port = spare_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8")  # fmt: skip

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / tool), *args]
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(
            argv, cwd=self.root, capture_output=True, text=True, check=check, timeout=120
        )

    @property
    def dsn(self) -> str:
        """A libpq DSN to the ``postgres`` database (for administration)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database of this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c shared_buffers=32MB -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", options,
                  "-w", "-t", str(START_TIMEOUT), "start")  # fmt: skip
        self.wait_ready()

    def wait_ready(self) -> None:
        """Block until a connection succeeds."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions, close every session)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        """True while the postmaster runs."""
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def database(self) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        """The server's log so far (for failure messages)."""
        with contextlib.suppress(OSError):
            return self.logfile.read_text(errors="replace")
        return ""

    def destroy(self) -> None:
        """Stop the server (immediately) and delete its files."""
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    """One private server per test process (xdist worker); tests in a worker run in turn."""
    reason = problem()
    if reason is not None:
        if os.environ.get("RUBRONG_REQUIRE_PG") == "1":
            pytest.fail(f"a private PostgreSQL is needed: {reason}")
        pytest.skip(f"no private PostgreSQL: {reason}")
    server = PrivatePostgres()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def pg(private_pg: PrivatePostgres) -> PrivatePostgres:
    """The private server, running (a failed restart test may have left it stopped)."""
    if not private_pg.running():
        private_pg.start()
    return private_pg
