"""initial schema

Revision ID: 0001
Revises:


"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "agreements",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.String(), nullable=False),
        sa.Column("org_id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("kpis", sa.Text(), nullable=True),
        sa.Column("kpi_version", sa.Integer(), nullable=False),
        sa.Column("negotiated", sa.Boolean(), nullable=False),
        sa.Column("change_request", sa.Text(), nullable=True),
        sa.Column("results", sa.Text(), nullable=True),
        sa.Column("tier", sa.String(), nullable=True),
        sa.Column("last_event_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("cycle_id", "org_id"),
    )
    op.create_table(
        "cycle_milestones",
        sa.Column("cycle_id", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("title_th", sa.String(), nullable=False),
        sa.Column("title_en", sa.String(), nullable=True),
        sa.Column("due", sa.String(), nullable=True),
        sa.Column("published_due", sa.String(), nullable=True),
        sa.Column("start", sa.String(), nullable=True),
        sa.Column("deadline", sa.BigInteger(), nullable=True),
        sa.Column("event", sa.String(), nullable=True),
        sa.Column("reminders", sa.String(), nullable=False),
        sa.Column("penalty", sa.String(), nullable=True),
        sa.Column("for_province", sa.Boolean(), nullable=False),
        sa.Column("for_group", sa.Boolean(), nullable=False),
        sa.Column("for_agency", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id", "id"),
    )
    op.create_table(
        "cycle_versions",
        sa.Column("cycle_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("applied_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id", "version"),
    )
    op.create_table(
        "cycles",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name_th", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("load_order", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.BigInteger(), nullable=False),
        sa.Column("last_tick", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "history",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("cycle_id", sa.String(), nullable=False),
        sa.Column("agreement", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("from_state", sa.String(), nullable=True),
        sa.Column("to_state", sa.String(), nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("history", schema=None) as batch_op:
        batch_op.create_index("ix_history_agreement", ["cycle_id", "agreement"], unique=False)

    op.create_table(
        "kpi_versions",
        sa.Column("agreement_pk", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kpis", sa.Text(), nullable=False),
        sa.Column("source_event", sa.String(), nullable=False),
        sa.Column("history_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agreement_pk", "version"),
    )
    op.create_table(
        "milestone_status",
        sa.Column("agreement_pk", sa.Integer(), nullable=False),
        sa.Column("milestone_id", sa.String(), nullable=False),
        sa.Column("cycle_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("met_at", sa.BigInteger(), nullable=True),
        sa.Column("late_business_days", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("agreement_pk", "milestone_id"),
    )
    with op.batch_alter_table("milestone_status", schema=None) as batch_op:
        batch_op.create_index(
            "ix_status_sweep", ["cycle_id", "milestone_id", "status"], unique=False
        )

    op.create_table(
        "organisations",
        sa.Column("cycle_id", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("group_id", sa.String(), nullable=True),
        sa.Column("name_th", sa.String(), nullable=False),
        sa.Column("name_en", sa.String(), nullable=True),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("supervisor_email", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id", "id"),
    )
    op.create_table(
        "outbox",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("cycle_id", sa.String(), nullable=False),
        sa.Column("agreement", sa.String(), nullable=True),
        sa.Column("milestone", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("notice", sa.String(), nullable=True),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("recipient_kind", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("send_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("template", sa.String(), nullable=False),
        sa.Column("template_version", sa.String(), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "security_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("agreement", sa.String(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "timers_done",
        sa.Column("cycle_id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("processed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("cycle_id", "key"),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("token_salt", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("token_prefix", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_token_prefix"), ["token_prefix"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_token_prefix"))

    op.drop_table("users")
    op.drop_table("timers_done")
    op.drop_table("security_log")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outbox")
    op.drop_table("organisations")
    with op.batch_alter_table("milestone_status", schema=None) as batch_op:
        batch_op.drop_index("ix_status_sweep")

    op.drop_table("milestone_status")
    op.drop_table("kpi_versions")
    with op.batch_alter_table("history", schema=None) as batch_op:
        batch_op.drop_index("ix_history_agreement")

    op.drop_table("history")
    op.drop_table("cycles")
    op.drop_table("cycle_versions")
    op.drop_table("cycle_milestones")
    op.drop_table("agreements")
