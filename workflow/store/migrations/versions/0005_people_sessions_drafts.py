"""people sign in: passwords, server-side sessions, one-time sign-in links, API tokens per
account, e-SAR card drafts, iCalendar feed secrets

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the tables of the web application; copy each account's token into api_tokens."""
    with op.batch_alter_table("users", schema=None) as batch:
        batch.add_column(sa.Column("display_name", sa.String(), nullable=True))
        batch.add_column(sa.Column("password_hash", sa.String(), nullable=True))
        batch.alter_column("token_salt", existing_type=sa.String(), nullable=True)
        batch.alter_column("token_hash", existing_type=sa.String(), nullable=True)
        batch.alter_column("token_prefix", existing_type=sa.String(), nullable=True)
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(), nullable=True),
        sa.Column("token_prefix", sa.String(), nullable=False),
        sa.Column("token_salt", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_tokens_prefix", "api_tokens", ["token_prefix"])
    op.create_index("ix_api_tokens_user", "api_tokens", ["user_id"])
    op.execute(
        "INSERT INTO api_tokens (user_id, label, token_prefix, token_salt, token_hash, "
        "created_at, revoked_at) SELECT id, 'first', token_prefix, token_salt, token_hash, "
        "created_at, revoked_at FROM users WHERE token_hash IS NOT NULL"
    )
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("user_agent", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_sessions_user", "sessions", ["user_id"])
    op.create_table(
        "signin_links",
        sa.Column("id_hash", sa.String(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_signin_links_user", "signin_links", ["user_id"])
    op.create_table(
        "esar_drafts",
        sa.Column("agreement_pk", sa.Integer(), nullable=False),
        sa.Column("round", sa.String(), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("kpi_version", sa.Integer(), nullable=False),
        sa.Column("document_sha256", sa.String(), nullable=True),
        sa.Column("document_name", sa.String(), nullable=True),
        sa.Column("document_size", sa.BigInteger(), nullable=True),
        sa.Column("document_type", sa.String(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(), nullable=False),
        sa.Column("submitted_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("agreement_pk", "round"),
    )
    op.create_table(
        "ical_feeds",
        sa.Column("cycle_id", sa.String(), nullable=False),
        sa.Column("org_id", sa.String(), nullable=False),
        sa.Column("secret_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("secret_hash"),
    )
    op.create_index("ix_ical_feeds_org", "ical_feeds", ["cycle_id", "org_id"])


def downgrade() -> None:
    """Drop the web application's tables (sessions, links and drafts are lost)."""
    op.drop_index("ix_ical_feeds_org", table_name="ical_feeds")
    op.drop_table("ical_feeds")
    op.drop_table("esar_drafts")
    op.drop_index("ix_signin_links_user", table_name="signin_links")
    op.drop_table("signin_links")
    op.drop_index("ix_sessions_user", table_name="sessions")
    op.drop_table("sessions")
    op.drop_index("ix_api_tokens_user", table_name="api_tokens")
    op.drop_index("ix_api_tokens_prefix", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.execute("DELETE FROM users WHERE token_hash IS NULL")
    with op.batch_alter_table("users", schema=None) as batch:
        batch.alter_column("token_prefix", existing_type=sa.String(), nullable=False)
        batch.alter_column("token_hash", existing_type=sa.String(), nullable=False)
        batch.alter_column("token_salt", existing_type=sa.String(), nullable=False)
        batch.drop_column("password_hash")
        batch.drop_column("display_name")
