"""Leadership of the timers among ``rubrong run`` processes on one PostgreSQL: the advisory
lock moves when its session ends, in one process, quickly; and the service options that tune
several processes (``--leader-retry``, ``--batch``, ``--clock-origin``) refuse bad values.

The real processes sharing the mail, with a leader stopped half-way:
``tests/test_multiprocess_mail.py``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.conftest import Cli, pg_url
from workflow.usecases.leader import AdvisoryLeader


def test_advisory_leadership_moves_when_the_session_ends() -> None:
    """In one process, quickly: one leader per schema; a lost or closed session hands over."""
    lines: list[dict[str, Any]] = []

    def log(action: str, **fields: Any) -> None:
        lines.append({"action": action, **fields})

    url, other_schema = pg_url(), pg_url()
    first, second = AdvisoryLeader(url, log), AdvisoryLeader(url, log)
    elsewhere = AdvisoryLeader(other_schema, log)
    try:
        assert (first.refresh(), second.refresh(), elsewhere.refresh()) == (True, False, True)
        assert (first.refresh(), second.refresh()) == (True, False)  # no change, no line
        assert [line["role"] for line in lines] == ["leader", "follower", "leader"]
        assert first.session is not None
        backend = first.session.execute(text("SELECT pg_backend_pid()")).scalar()
        with second.engine.connect() as admin:  # the leader's session is cut
            # (with a timeout, PostgreSQL ≥ 14 waits until the backend has gone)
            admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": backend})
        assert second.refresh() is True  # the lock went with the session
        assert first.refresh() is False
        assert "session lost" in lines[-1]["reason"] and lines[-1]["role"] == "follower"
        second.close()  # a clean stop hands over at once
        assert lines[-1]["role"] == "released" and first.refresh() is True
    finally:
        for leader in (first, second, elsewhere):
            leader.close()


def test_bad_service_options_exit_2(sqlite_cli: Cli) -> None:
    for args, message in [
        (("run", "--leader-retry", "0"), "--leader-retry"),
        (("run", "--batch", "0"), "--batch"),
        (("run", "--clock-origin", "1700000000"), "--clock-origin"),
    ]:
        result = sqlite_cli(*args)
        assert result.code == 2 and message in result.err, result
