"""accounts by id (a revoked name can be reused, an e-mail per person) and the exact bytes sent

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_ACTIVE_NAME = "ix_users_active_name"


def upgrade() -> None:
    """Users get a surrogate id, an e-mail and a name unique among active accounts only; the
    outbox keeps the message bytes as sent and their SHA-256."""
    op.create_table(
        "users_new",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("token_salt", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("token_prefix", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(
        "INSERT INTO users_new (name, role, token_salt, token_hash, token_prefix, created_at, "
        "revoked_at) SELECT name, role, token_salt, token_hash, token_prefix, created_at, "
        "revoked_at FROM users ORDER BY created_at, name"
    )
    op.drop_index("ix_users_token_prefix", table_name="users")
    op.drop_table("users")
    op.rename_table("users_new", "users")
    op.create_index("ix_users_token_prefix", "users", ["token_prefix"], unique=False)
    op.create_index("ix_users_name", "users", ["name"], unique=False)
    op.create_index(
        _ACTIVE_NAME,
        "users",
        ["name"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch:
        batch.add_column(sa.Column("sent_bytes", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("sent_sha256", sa.String(), nullable=True))


def downgrade() -> None:
    """Back to names as keys (only the newest account of each name survives)."""
    with op.batch_alter_table("outbox", schema=None) as batch:
        batch.drop_column("sent_sha256")
        batch.drop_column("sent_bytes")
    op.create_table(
        "users_old",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("token_salt", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("token_prefix", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        "INSERT INTO users_old SELECT name, role, token_salt, token_hash, token_prefix, "
        "created_at, revoked_at FROM users u WHERE id = (SELECT MAX(id) FROM users v "
        "WHERE v.name = u.name)"
    )
    op.drop_table("users")
    op.rename_table("users_old", "users")
    op.create_index("ix_users_token_prefix", "users", ["token_prefix"], unique=False)
