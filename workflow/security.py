"""The security log: refused attempts, kept apart from the history (CONTRACT.md)."""

from __future__ import annotations

from sqlalchemy import insert

from workflow.clock import Clock
from workflow.errors import RubrongError
from workflow.store import Database
from workflow.tables import SecurityLogRow

SECURITY_LOG = SecurityLogRow.__table__  # type: ignore[attr-defined]


def record_refusal(
    db: Database, clock: Clock, actor: str, agreement: str | None, action: str, error: RubrongError
) -> None:
    """Record one authorisation failure in its own transaction."""
    with db.write() as conn:
        conn.execute(
            insert(SECURITY_LOG).values(
                at=clock.now(),
                actor=actor,
                agreement=agreement,
                action=action,
                reason=error.message,
            )
        )
