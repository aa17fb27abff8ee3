"""``rubrong run --checkpoint-key FILE --checkpoint-dir DIR``: one signed checkpoint per day.

A real service process on an accelerated clock (a Bangkok day is 6 wall seconds) from 12 Sep
22:00 to 15 Sep 02:00, where its clock stops: the leader wakes at every Bangkok midnight and
signs the chain's head at its first wake of each day, so there are four files (12, 13, 14 and
15 Sep), each verified by ``rubrong verify --checkpoint F --public-key K``. The deadline of
14 Sep 00:00 adds 92 ``missed`` entries in the same wake as that day's checkpoint, before it:
the files before it sign entry 1, the ones from it on entry 93. Restarts on a day that has its
file write nothing; the options also come from the environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CYCLE_2554, Cli
from tests.support.service import Service, Sink

DAYS = ["2010-09-12", "2010-09-13", "2010-09-14", "2010-09-15"]
SPEED = "14400"  # a day is 6 wall seconds
WAIT = 120  # wall seconds: generous, for a loaded machine


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        if service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait()


@pytest.fixture
def ready(sqlite_cli: Cli, tmp_path: Path, kpis_json: str) -> tuple[Cli, Path, Path]:
    """cycle_2554 loaded, TH-50's KPIs proposed (history entry 1), a key pair in keys/."""
    cli = sqlite_cli
    assert cli("load", str(CYCLE_2554)).code == 0
    fired = cli("fire", "TH-50", "propose_kpis", "--as", "province:TH-50",
                "--at", "2010-09-10T10:00", "--data", kpis_json)  # fmt: skip
    assert fired.code == 0, fired.err
    assert cli("keygen", "--out", str(tmp_path / "keys")).code == 0
    return cli, tmp_path / "keys" / "checkpoint.key", tmp_path / "keys" / "checkpoint.pub"


def verified(cli: Cli, path: Path, public: Path) -> dict[str, object]:
    """``verify --checkpoint`` of one file: exit 0, and its JSON."""
    result = cli("verify", "--json", "--checkpoint", str(path), "--public-key", str(public))
    assert result.code == 0, (path, result.out, result.err)
    answer: dict[str, object] = result.json()
    return answer


def test_the_leader_writes_one_checkpoint_per_day(
    ready: tuple[Cli, Path, Path], sink: Sink, services: list[Service], tmp_path: Path
) -> None:
    cli, key, public = ready
    out = tmp_path / "checkpoints"
    args = ("--clock-start", "2010-09-12T22:00", "--speed", SPEED,
            "--clock-stop", "2010-09-15T02:00", "--poll", "1",
            "--checkpoint-key", str(key), "--checkpoint-dir", str(out))  # fmt: skip
    service = Service(cli, sink.url, *args)
    services.append(service)
    service.wait_for(lambda line: line["action"] == "checkpoint" and DAYS[-1] in line["file"], WAIT)
    assert service.stop() == 0
    service.assert_clean_exit()

    files = sorted(out.glob("checkpoint-*.json"))
    assert [path.name for path in files] == [f"checkpoint-{day}.json" for day in DAYS]
    lines = service.actions("checkpoint")
    assert [Path(line["file"]).name for line in lines] == [path.name for path in files]
    seqs = []
    for path, line in zip(files, lines, strict=True):
        signed = json.loads(path.read_text(encoding="utf-8"))
        assert (signed["seq"], signed["head"]) == (line["seq"], line["head"])
        assert signed["recorded_at"].startswith(path.stem.removeprefix("checkpoint-"))
        assert signed["recorded_at"].endswith("+07:00")
        verified(cli, path, public)
        seqs.append(signed["seq"])
    assert seqs == [1, 1, 93, 93]  # 92 missed entries at the deadline, before that day's file

    # A restart on a day that has its file writes nothing; the next day gets one. The key and
    # directory come from the environment this time.
    env = {"RUBRONG_CHECKPOINT_KEY": str(key), "RUBRONG_CHECKPOINT_DIR": str(out)}
    same_day = cli.subprocess("--smtp", sink.url, "run", "--once",
                              "--clock-start", "2010-09-15T09:30", env=env)  # fmt: skip
    assert same_day.code == 0, same_day.err
    assert '"checkpoint"' not in same_day.err
    next_day = cli.subprocess("--smtp", sink.url, "run", "--once",
                              "--clock-start", "2010-09-16T09:30", env=env)  # fmt: skip
    assert next_day.code == 0, next_day.err
    (line,) = [json.loads(text) for text in next_day.err.splitlines() if '"checkpoint"' in text]
    assert Path(line["file"]).name == "checkpoint-2010-09-16.json"
    assert len(list(out.glob("checkpoint-*.json"))) == len(DAYS) + 1
    assert verified(cli, out / "checkpoint-2010-09-16.json", public)["ok"] is True


def test_checkpoint_and_clock_options_are_checked(
    ready: tuple[Cli, Path, Path], tmp_path: Path
) -> None:
    cli, key, _ = ready
    out = str(tmp_path / "checkpoints")
    for args, message in [
        (("run", "--checkpoint-dir", out), "--checkpoint-key"),
        (("run", "--checkpoint-key", str(key)), "--checkpoint-dir"),
        (("run", "--checkpoint-key", str(tmp_path / "nope.key"), "--checkpoint-dir", out),
         "nope.key"),
        (("run", "--checkpoint-key", str(key.with_suffix(".pub")), "--checkpoint-dir", out),
         "not an Ed25519 private key"),
        (("run", "--clock-stop", "2010-09-15"), "--clock-stop"),
        (("run", "--clock-start", "2010-09-15", "--clock-stop", "2010-09-14"), "--clock-stop"),
        (("run", "--clock-start", "2010-09-15", "--clock-stop", "soon"), "--clock-stop"),
    ]:  # fmt: skip
        result = cli(*args)
        assert result.code == 2 and message in result.err, (args, result)
    assert not Path(out).exists()
