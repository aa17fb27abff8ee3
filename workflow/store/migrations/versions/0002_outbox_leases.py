"""outbox leases: several dispatchers claim rows without sending one twice

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the lease columns to the outbox."""
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("lease_until", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("leased_by", sa.String(), nullable=True))


def downgrade() -> None:
    """Drop the lease columns."""
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("leased_by")
        batch.drop_column("lease_until")
