"""outbox index by agreement: arrivals skip one agreement's notices without a full scan

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Index the outbox by (cycle, agreement, milestone)."""
    op.create_index("ix_outbox_agreement", "outbox", ["cycle_id", "agreement", "milestone"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_outbox_agreement", table_name="outbox")
