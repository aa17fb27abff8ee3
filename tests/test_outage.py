"""The SMTP server goes away and comes back: nothing lost, nothing duplicated; 5xx is final.

Every ``tick --now`` here runs the real command (in-process) against a real aiosmtpd server, or
against a closed port while it is "down". The retry clock is ``--now``: backoff 1 minute
doubling to 1 hour, ``failed`` after ``max_attempts`` or a 5xx answer, then one ``alert``.
"""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from bench.cyclegen import generate_cycle
from tests.conftest import Cli, Result
from tests.support.smtp import RecordingHandler, free_port
from workflow.rules.timeutil import format_instant, parse_instant

T0 = parse_instant("2010-08-30T09:00")  # the 14-day reminders of propose_kpis (due 13 Sep)
T7 = parse_instant("2010-09-06T09:00")  # the 7-day reminders
OPDC = "opdc@opdc.rubrong.example"


def load(cli: Cli, folder: Path, max_attempts: int = 8) -> None:
    """1 group + 2 provinces (3 agreements), dates as published."""
    text = generate_cycle(cycle_id="2554", groups=1, provinces_per_group=2, deadline_policy="keep")
    text = text.replace("max_attempts = 8", f"max_attempts = {max_attempts}")
    path = folder / "cycle.toml"
    path.write_text(text, encoding="utf-8")
    result = cli("load", str(path))
    assert result.code == 0, result.err


@contextmanager
def server_on(port: int, handler: RecordingHandler) -> Iterator[RecordingHandler]:
    """A real SMTP server on ``port`` for the duration of the block."""
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


def tick(cli: Cli, at: int, port: int) -> Result:
    result = cli(
        "tick", "--now", str(format_instant(at)), "--json", smtp=f"smtp://127.0.0.1:{port}"
    )
    assert result.code == 0, result.err
    return result


def outbox(cli: Cli) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in cli("outbox", "--json").json()}


def attempts(cli: Cli) -> dict[str, int]:
    return {key: row["attempts"] for key, row in outbox(cli).items()}


def message_ids(handler: RecordingHandler) -> Counter[str]:
    return Counter(
        str(email.message_from_bytes(item.content, policy=email.policy.default)["Message-ID"])
        for item in handler.received
    )


def test_server_down_then_back_every_mail_arrives_once(sqlite_cli: Cli, tmp_path: Path) -> None:
    cli = sqlite_cli
    load(cli, tmp_path)
    port = free_port()  # nothing listens here: connections are refused

    first = tick(cli, T0, port).json()
    assert (first["enqueued"], first["sent"], first["retrying"]) == (3, 0, 3)
    rows = outbox(cli)
    batch1 = set(rows)
    assert {row["status"] for row in rows.values()} == {"pending"}
    assert all(row["attempts"] == 1 for row in rows.values())
    assert all("127.0.0.1" in (row["last_error"] or "") for row in rows.values())

    # Backoff: 1, 2, 4, 8 minutes after each failed attempt, on the --now clock.
    moment = T0
    for done, wait in enumerate([60, 120, 240, 480], start=1):
        early = tick(cli, moment + wait - 1, port).json()
        assert early["sent"] + early["retrying"] == 0  # not due yet: not even tried
        assert set(attempts(cli).values()) == {done}
        moment += wait
        tick(cli, moment, port)
        assert set(attempts(cli).values()) == {done + 1}
    assert moment + 960 < T7  # the next retry (16 minutes) is due long before T7

    # A week later, still down: the 7-day reminders join; old rows are retried (no catch-up
    # rule for retries), none is dropped or failed.
    week = tick(cli, T7, port).json()
    assert (week["enqueued"], week["retrying"], week["failed"]) == (3, 6, 0)
    counts = attempts(cli)
    batch2 = set(counts) - batch1
    assert {counts[key] for key in batch1} == {6} and {counts[key] for key in batch2} == {1}
    tick(cli, T7 + 32 * 60, port)  # 32 minutes: the 7th attempt of batch 1, 2nd of batch 2
    counts = attempts(cli)
    assert {counts[key] for key in batch1} == {7} and {counts[key] for key in batch2} == {2}
    assert {row["status"] for row in outbox(cli).values()} == {"pending"}

    with server_on(port, RecordingHandler()) as handler:
        # Back up. Batch 2 waits 4 minutes, batch 1 one hour (capped: not 64 minutes).
        back = tick(cli, T7 + 32 * 60 + 3599, port).json()
        assert (back["sent"], back["retrying"]) == (3, 0)
        assert len(handler.received) == 3
        assert tick(cli, T7 + 32 * 60 + 3600, port).json()["sent"] == 3  # 8th and last attempt
        for later in (T7 + 3 * 3600, T7 + 86_400):  # nothing is sent twice
            assert tick(cli, later, port).json()["sent"] == 0
        received = message_ids(handler)
    rows = outbox(cli)
    assert {row["status"] for row in rows.values()} == {"sent"}
    assert received == Counter({row["message_id"]: 1 for row in rows.values()})
    assert {rows[key]["attempts"] for key in batch1} == {8}
    assert {rows[key]["attempts"] for key in batch2} == {3}


def test_permanent_refusal_fails_once_with_one_alert(sqlite_cli: Cli, tmp_path: Path) -> None:
    cli = sqlite_cli
    load(cli, tmp_path)
    port = free_port()
    refused = "governor@th-12.rubrong.example"
    handler = RecordingHandler(refuse_rcpt={refused: "550 5.1.1 no such mailbox"})
    with server_on(port, handler):
        result = tick(cli, T0, port)
        report = result.json()
        assert (report["sent"], report["failed"]) == (2 + 1, 1)  # the alert goes out too
        warnings = result.err.strip().splitlines()
        assert len(warnings) == 1 and "warning" in warnings[0]
        rows = outbox(cli)
        (failed,) = [row for row in rows.values() if row["status"] == "failed"]
        assert failed["to"] == refused and failed["attempts"] == 1
        assert "550" in failed["last_error"] and "no such mailbox" in failed["last_error"]
        (alert,) = [row for row in rows.values() if row["kind"] == "alert"]
        assert (alert["to"], alert["agreement"], alert["status"]) == (OPDC, None, "sent")
        for later in (T0 + 3600, T0 + 86_400):  # failed stays failed: no retry, no 2nd alert
            again = tick(cli, later, port)
            assert again.json()["sent"] == 0 and again.err == ""
        assert len(outbox(cli)) == 4
        assert len(handler.received) == 3
        alert_mail = email.message_from_bytes(
            handler.received[-1].content, policy=email.policy.default
        )
        alert_text = alert_mail.get_body(preferencelist=("plain",))
        assert alert_text is not None and failed["key"] in alert_text.get_content()

        # The mailbox is fixed; an admin re-sends the failed row and a sent one.
        handler.refuse_rcpt.clear()
        sent_key = next(key for key, row in rows.items() if row["status"] == "sent")
        for key in (failed["key"], sent_key):
            assert cli("outbox", "resend", key).code == 0
            assert outbox(cli)[key]["status"] == "pending"
        assert cli("outbox", "resend", "2554/nobody/sar6/x/reminder/7").code == 2
        assert tick(cli, T0 + 2 * 86_400, port).json()["sent"] == 2
        ids = message_ids(handler)
    rows = outbox(cli)
    assert rows[failed["key"]]["status"] == rows[sent_key]["status"] == "sent"
    assert ids[rows[failed["key"]]["message_id"]] == 1  # the same Message-ID as before
    assert ids[rows[sent_key]["message_id"]] == 2  # sent again, recognisably the same mail
    assert sum(ids.values()) == 5


def test_max_attempts_then_failed_and_the_alert_waits_for_the_server(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    cli = sqlite_cli
    load(cli, tmp_path, max_attempts=2)
    port = free_port()
    assert tick(cli, T0, port).json()["retrying"] == 3
    result = tick(cli, T0 + 60, port)
    assert result.json()["failed"] == 3
    assert len(result.err.strip().splitlines()) == 1 and "warning" in result.err
    rows = outbox(cli)
    notices = [row for row in rows.values() if row["kind"] == "reminder"]
    alerts = [row for row in rows.values() if row["kind"] == "alert"]
    assert {(row["status"], row["attempts"]) for row in notices} == {("failed", 2)}
    assert len(alerts) == 3 and {row["status"] for row in alerts} == {"pending"}
    with server_on(port, RecordingHandler()) as handler:
        assert tick(cli, T0 + 3600, port).json()["sent"] == 3
        ids = message_ids(handler)
    assert ids == Counter({row["message_id"]: 1 for row in alerts})
    assert all(item.rcpt_tos == [OPDC] for item in handler.received)
