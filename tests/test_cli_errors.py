"""The CLI's error boundary: usage errors exit 2 with one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, Cli


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("fire",), "Missing argument"),
        (("nosuchcommand",), "No such command"),
        (("tick",), "Missing option '--now'"),
        (("status", "--bogus"), "No such option"),
        (("fire", "TH-50", "sign"), "Missing option '--as'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    sqlite_cli: Cli, args: tuple[str, ...], needle: str
) -> None:
    result = sqlite_cli(*args)
    assert result.code == 2
    assert needle in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err and result.out == ""


def test_the_real_command_has_the_same_boundary(sqlite_cli: Cli) -> None:
    result = sqlite_cli.subprocess("fire", "TH-50")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_help_exits_0(sqlite_cli: Cli) -> None:
    result = sqlite_cli("--help")
    assert result.code == 0 and "simulate" in result.out


@pytest.mark.parametrize("args", [("status",), ("history",), ("load", "cycle_2554.toml")])
def test_a_file_that_is_not_a_database_is_one_line_exit_1(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"these bytes are not a SQLite database\n" * 4)
    result = Cli(f"sqlite:///{junk}", ROOT).subprocess(*args)
    assert result.code == 1, result.err
    assert result.err.strip() == "rubrong: database unusable: file is not a database"
    assert junk.read_bytes().startswith(b"these bytes")  # nothing written over it
