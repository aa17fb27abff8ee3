"""security log by time: sign-in rate limits count recent failures without a full scan

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Index the security log by the time of each entry."""
    op.create_index("ix_security_log_at", "security_log", ["at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_security_log_at", table_name="security_log")
