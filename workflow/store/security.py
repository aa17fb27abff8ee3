"""The security log: refused attempts and sign-in events, kept apart from the history.

Authorisation failures are written by :func:`record_refusal` (CONTRACT.md). Sign-in events
(success, failure, link requested and used, sign-out, revocation) are written by
:func:`record_event`; the table has no outcome column, so the outcome is part of the action
text: ``ACTION [OUTCOME] from ADDRESS`` (``ok``, ``failure``, ``refused``, ``rate-limited``,
``sent``…). Failed sign-ins are counted back from the log (:func:`recent_failures`), so a rate
limit holds across every process sharing the database.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select

from workflow.rules.clock import Clock
from workflow.rules.errors import RubrongError
from workflow.store.database import Database
from workflow.store.tables import SecurityLogRow

SECURITY_LOG = SecurityLogRow.__table__  # type: ignore[attr-defined]
FAILURE = "failure"
MAX_TEXT = 500


def record_refusal(
    db: Database, clock: Clock, actor: str, agreement: str | None, action: str, error: RubrongError
) -> None:
    """Record one authorisation failure in its own transaction."""
    with db.write() as conn:
        conn.execute(
            insert(SECURITY_LOG).values(
                at=clock.now(),
                actor=actor[:MAX_TEXT],
                agreement=agreement,
                action=action[:MAX_TEXT],
                reason=error.message[:MAX_TEXT],
            )
        )


def event_action(action: str, outcome: str, address: str) -> str:
    """The action text of a sign-in event: ``ACTION [OUTCOME] from ADDRESS``."""
    return f"{action} [{outcome}] from {address}"


def record_event(
    db: Database,
    clock: Clock,
    *,
    actor: str,
    action: str,
    outcome: str,
    reason: str,
    address: str,
) -> None:
    """Record one sign-in or session event (any outcome) in its own transaction."""
    with db.write() as conn:
        conn.execute(
            insert(SECURITY_LOG).values(
                at=clock.now(),
                actor=actor[:MAX_TEXT],
                agreement=None,
                action=event_action(action[:MAX_TEXT], outcome, address[:100]),
                reason=reason[:MAX_TEXT],
            )
        )


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def account_marker(user_id: int) -> str:
    """How a sign-in event names its account in the action text (counted per account)."""
    return f"#{user_id})"


def recent_failures(
    db: Database,
    since: int,
    *,
    account_id: int | None = None,
    address: str | None = None,
) -> int:
    """Failed sign-ins recorded at or after ``since`` for one account or from one address."""
    query = select(func.count()).select_from(SECURITY_LOG).where(SECURITY_LOG.c.at >= since)
    if account_id is not None:
        pattern = f"%{_like(account_marker(account_id))} [{FAILURE}]%"
        query = query.where(SECURITY_LOG.c.action.like(pattern, escape="\\"))
    if address is not None:
        pattern = f"% [{FAILURE}] from {_like(address)}"
        query = query.where(SECURITY_LOG.c.action.like(pattern, escape="\\"))
    with db.read() as conn:
        return int(conn.execute(query).scalar_one())
