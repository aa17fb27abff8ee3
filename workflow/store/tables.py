"""The database schema (SQLModel). Instants are integer epoch seconds; dates are ISO text.

Hot paths (fire, tick, dispatch) use SQLAlchemy Core statements against these tables'
``__table__``; reads for the CLI use them too. Nothing here holds behaviour.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class CycleRow(SQLModel, table=True):
    """A loaded cycle file (its latest applied version)."""

    __tablename__ = "cycles"
    id: str = Field(primary_key=True)
    name_th: str
    version: int
    content_hash: str
    document: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(sa_column=Column(Text, nullable=False))
    load_order: int
    loaded_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_tick: int | None = Field(default=None, sa_column=Column(BigInteger))


class CycleVersionRow(SQLModel, table=True):
    """Every applied version of a cycle file, kept for audit."""

    __tablename__ = "cycle_versions"
    cycle_id: str = Field(primary_key=True)
    version: int = Field(primary_key=True)
    content_hash: str
    document: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(sa_column=Column(Text, nullable=False))
    applied_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class MilestoneRow(SQLModel, table=True):
    """A milestone of a cycle, with its effective due date and deadline instant."""

    __tablename__ = "cycle_milestones"
    cycle_id: str = Field(primary_key=True)
    id: str = Field(primary_key=True)
    position: int
    kind: str
    actor: str
    title_th: str
    title_en: str | None = None
    due: str | None = None
    published_due: str | None = None
    start: str | None = None
    deadline: int | None = Field(default=None, sa_column=Column(BigInteger))
    event: str | None = None
    reminders: str = "[]"
    penalty: str | None = None
    for_province: bool = True
    for_group: bool = True
    for_agency: bool = True


class OrganisationRow(SQLModel, table=True):
    """A party to an agreement: province, group or agency."""

    __tablename__ = "organisations"
    cycle_id: str = Field(primary_key=True)
    id: str = Field(primary_key=True)
    kind: str
    group_id: str | None = None
    name_th: str
    name_en: str | None = None
    email: str
    supervisor_email: str
    active: bool = True


class AgreementRow(SQLModel, table=True):
    """One agreement: its state and the data its events carried."""

    __tablename__ = "agreements"
    __table_args__ = (UniqueConstraint("cycle_id", "org_id"),)
    pk: int | None = Field(default=None, primary_key=True)
    cycle_id: str
    org_id: str
    state: str
    version: int = 0
    published: bool = False
    kpis: str | None = Field(default=None, sa_column=Column(Text))
    kpi_version: int = 0
    negotiated: bool = False
    change_request: str | None = Field(default=None, sa_column=Column(Text))
    results: str | None = Field(default=None, sa_column=Column(Text))
    tier: str | None = None
    last_event_at: int | None = Field(default=None, sa_column=Column(BigInteger))


class KpiVersionRow(SQLModel, table=True):
    """Every KPI set an agreement has had: proposed, negotiated, changed."""

    __tablename__ = "kpi_versions"
    agreement_pk: int = Field(primary_key=True)
    version: int = Field(primary_key=True)
    kpis: str = Field(sa_column=Column(Text, nullable=False))
    source_event: str
    history_seq: int


class MilestoneStatusRow(SQLModel, table=True):
    """Where one agreement stands on one milestone."""

    __tablename__ = "milestone_status"
    __table_args__ = (Index("ix_status_sweep", "cycle_id", "milestone_id", "status"),)
    agreement_pk: int = Field(primary_key=True)
    milestone_id: str = Field(primary_key=True)
    cycle_id: str
    status: str
    met_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    late_business_days: int | None = None


class HistoryRow(SQLModel, table=True):
    """One entry of the global, append-only, hash-chained history."""

    __tablename__ = "history"
    __table_args__ = (Index("ix_history_agreement", "cycle_id", "agreement"),)
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    cycle_id: str
    agreement: str | None = None
    kind: str
    event: str
    from_state: str | None = None
    to_state: str | None = None
    actor: str
    at: int = Field(sa_column=Column(BigInteger, nullable=False))
    recorded_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    data: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str
    hash: str


class OutboxRow(SQLModel, table=True):
    """One notification: enqueued once by its unique key, sent (or skipped) once."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # Arrivals and waivers skip one agreement's pending notices of one milestone.
        Index("ix_outbox_agreement", "cycle_id", "agreement", "milestone"),
    )
    key: str = Field(primary_key=True)
    cycle_id: str
    agreement: str | None = None
    milestone: str | None = None
    kind: str
    notice: str | None = None
    recipient: str
    recipient_kind: str
    subject: str
    send_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str
    attempts: int = 0
    next_attempt_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_error: str | None = None
    message_id: str
    template: str
    template_version: str
    context: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    sent_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    lease_until: int | None = Field(default=None, sa_column=Column(BigInteger))
    leased_by: str | None = None
    # The message exactly as handed to the mail server, and its SHA-256 (proof of notice).
    sent_bytes: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    sent_sha256: str | None = None


class TimerRow(SQLModel, table=True):
    """A timer instant that ``tick`` has processed (so it is never processed twice)."""

    __tablename__ = "timers_done"
    cycle_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    at: int = Field(sa_column=Column(BigInteger, nullable=False))
    processed_at: int = Field(sa_column=Column(BigInteger, nullable=False))


class UserRow(SQLModel, table=True):
    """An account: a person or a machine, with a role and a salted hash of its API token.

    A name is unique among accounts that are not revoked, so a revoked name can be reused.
    """

    __tablename__ = "users"
    __table_args__ = (
        Index("ix_users_name", "name"),
        Index(
            "ix_users_active_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    name: str
    role: str
    email: str | None = None
    display_name: str | None = None
    password_hash: str | None = None
    # The account's first token (before schema 0005); api_tokens holds every token since.
    token_salt: str | None = None
    token_hash: str | None = None
    token_prefix: str | None = Field(default=None, index=True)
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    revoked_at: int | None = Field(default=None, sa_column=Column(BigInteger))


class ApiTokenRow(SQLModel, table=True):
    """An API token of an account (machines): shown once, stored as a salted hash."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        Index("ix_api_tokens_prefix", "token_prefix"),
        Index("ix_api_tokens_user", "user_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    user_id: int
    label: str | None = None
    token_prefix: str
    token_salt: str
    token_hash: str
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_used_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    revoked_at: int | None = Field(default=None, sa_column=Column(BigInteger))


class SessionRow(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random id, the database only its SHA-256."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user", "user_id"),)
    id_hash: str = Field(primary_key=True)
    user_id: int
    csrf_token: str
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_seen_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    revoked_at: int | None = Field(default=None, sa_column=Column(BigInteger))
    user_agent: str | None = None


class SigninLinkRow(SQLModel, table=True):
    """A one-time sign-in link sent by mail: short-lived, single use, bound to one account."""

    __tablename__ = "signin_links"
    __table_args__ = (Index("ix_signin_links_user", "user_id"),)
    id_hash: str = Field(primary_key=True)
    user_id: int
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    expires_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    used_at: int | None = Field(default=None, sa_column=Column(BigInteger))


class EsarDraftRow(SQLModel, table=True):
    """An e-SAR Card being filled in (saved any number of times before it is submitted)."""

    __tablename__ = "esar_drafts"
    agreement_pk: int = Field(primary_key=True)
    round: str = Field(primary_key=True)  # sar6 | esar9 | sar12
    card: str = Field(sa_column=Column(Text, nullable=False))
    kpi_version: int
    document_sha256: str | None = None
    document_name: str | None = None
    document_size: int | None = Field(default=None, sa_column=Column(BigInteger))
    document_type: str | None = None
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_by: str
    submitted_seq: int | None = Field(default=None, sa_column=Column(BigInteger))


class IcalFeedRow(SQLModel, table=True):
    """A revocable secret that opens one organisation's read-only iCalendar feed."""

    __tablename__ = "ical_feeds"
    __table_args__ = (Index("ix_ical_feeds_org", "cycle_id", "org_id"),)
    secret_hash: str = Field(primary_key=True)
    cycle_id: str
    org_id: str
    created_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    revoked_at: int | None = Field(default=None, sa_column=Column(BigInteger))


class SecurityLogRow(SQLModel, table=True):
    """A refused attempt (authorisation failure); not part of the history."""

    __tablename__ = "security_log"
    # Sign-in rate limits count the failures of the last minutes (workflow.store.security).
    __table_args__ = (Index("ix_security_log_at", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    at: int = Field(sa_column=Column(BigInteger, nullable=False))
    actor: str
    agreement: str | None = None
    action: str
    reason: str


TABLES = SQLModel.metadata
