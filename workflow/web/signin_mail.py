"""One-time sign-in links: made, mailed (never through the outbox) and consumed.

A link is ``<public base>/signin/link/<token>`` with a random 256-bit token; ``signin_links``
keeps only its SHA-256, the account it opens, when it expires (15 minutes after it was asked for,
on the wall clock) and when it was used. It works once. The letter goes straight to the
configured mailer: a sign-in link is a credential and must not be kept readable in the outbox.
The public base is ``RUBRONG_PUBLIC_URL`` when set, else the request's own base URL.
"""

from __future__ import annotations

import enum
import os
import secrets
import uuid
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Connection, func, insert, select, update

from notifications.dates import english_date, thai_date
from notifications.mailers import Mailer, SendStatus
from notifications.message import OutgoingMail
from notifications.render import TEMPLATES_DIR, RenderedMail
from workflow.rules.timeutil import to_bangkok
from workflow.store.database import Database
from workflow.store.repository import get_cycle, latest_cycle_id
from workflow.store.tables import SigninLinkRow, UserRow
from workflow.store.tokens import User, user_from_row
from workflow.web.session import PUBLIC_URL_ENV, hash_id

LINKS = SigninLinkRow.__table__  # type: ignore[attr-defined]
USERS = UserRow.__table__  # type: ignore[attr-defined]
LINK_MINUTES = 15
LINKS_PER_WINDOW = 5  # links mailed to one account within LINK_MINUTES
SENDER_ENV = "RUBRONG_MAIL_FROM"
DEFAULT_SENDER = "rubrong@localhost"


class LinkProblem(enum.Enum):
    """Why a sign-in link does not open a session."""

    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"


def public_base(request_base: str) -> str:
    """The base URL links point to: ``RUBRONG_PUBLIC_URL`` or the request's own."""
    return (os.environ.get(PUBLIC_URL_ENV, "").strip() or request_base).rstrip("/")


def make_link(db: Database, user: User, now: int) -> str | None:
    """A new link token for ``user`` (only its hash is stored), or None when the account was
    sent ``LINKS_PER_WINDOW`` links within the last ``LINK_MINUTES`` (no mail bombing)."""
    token = secrets.token_urlsafe(32)
    with db.write() as conn:
        recent = conn.execute(
            select(func.count())
            .select_from(LINKS)
            .where(LINKS.c.user_id == user.id, LINKS.c.created_at > now - LINK_MINUTES * 60)
        ).scalar_one()
        if recent >= LINKS_PER_WINDOW:
            return None
        conn.execute(
            insert(LINKS).values(
                id_hash=hash_id(token),
                user_id=user.id,
                created_at=now,
                expires_at=now + LINK_MINUTES * 60,
                used_at=None,
            )
        )
    return token


def _problem(row: Any, now: int) -> LinkProblem | None:
    """Why a stored link opens nothing now (None: it still works)."""
    if row is None:
        return LinkProblem.UNKNOWN
    if row.used_at is not None:
        return LinkProblem.USED
    if row.expires_at <= now:
        return LinkProblem.EXPIRED
    return None


def _account(conn: Connection, user_id: int) -> User | LinkProblem:
    found = conn.execute(
        select(USERS).where(USERS.c.id == user_id, USERS.c.revoked_at.is_(None))
    ).first()
    return LinkProblem.UNKNOWN if found is None else user_from_row(found)


def peek_link(db: Database, token: str, now: int) -> User | LinkProblem:
    """The account a link would open, without using it (what opening the mailed URL shows:
    mail scanners and previews fetch links, so only the confirming POST may spend it)."""
    with db.read() as conn:
        row = conn.execute(select(LINKS).where(LINKS.c.id_hash == hash_id(token))).first()
        problem = _problem(row, now)
        if problem is not None or row is None:
            return problem or LinkProblem.UNKNOWN
        return _account(conn, row.user_id)


def consume_link(db: Database, token: str, now: int) -> User | LinkProblem:
    """The account a link opens, marking it used (once, even under concurrent use), or why not."""
    digest = hash_id(token)
    with db.write() as conn:
        row = conn.execute(select(LINKS).where(LINKS.c.id_hash == digest)).first()
        problem = _problem(row, now)
        if problem is not None or row is None:
            return problem or LinkProblem.UNKNOWN
        taken = conn.execute(
            update(LINKS)
            .where(LINKS.c.id_hash == digest, LINKS.c.used_at.is_(None))
            .values(used_at=now)
        )
        if taken.rowcount != 1:
            return LinkProblem.USED
        return _account(conn, row.user_id)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR / "mail"),  # the letters' own templates
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=False),
        keep_trailing_newline=True,
    )


def _sender(db: Database) -> str:
    configured = os.environ.get(SENDER_ENV, "").strip()
    if configured:
        return configured
    with db.read() as conn:
        if latest_cycle_id(conn) is None:
            return DEFAULT_SENDER
        return get_cycle(conn, None).settings.opdc_email


def link_mail(db: Database, user: User, link: str, now: int) -> OutgoingMail:
    """The letter carrying ``link`` to ``user``'s address (Thai first, English beneath)."""
    assert user.email is not None
    expires = to_bangkok(now + LINK_MINUTES * 60)
    subject = "ลิงก์เข้าสู่ระบบ rubrong / Your rubrong sign-in link"
    context: dict[str, Any] = {
        "subject": subject,
        "display_name": user.shown_name,
        "account": user.name,
        "link": link,
        "minutes": LINK_MINUTES,
        "expires_th": f"{thai_date(expires.date())} เวลา {expires:%H:%M} น.",
        "expires_en": f"{expires:%H:%M} on {english_date(expires.date())} (Bangkok time)",
    }
    env = _environment()
    rendered = RenderedMail(
        template="signin_link",
        version="1",
        subject=subject,
        text=env.get_template("signin_link.txt.j2").render(context),
        html=env.get_template("signin_link.html.j2").render(context),
    )
    return OutgoingMail(
        key=f"signin-{uuid.uuid4().hex}",
        sender=_sender(db),
        to=user.email,
        message_id=f"<signin.{uuid.uuid4().hex}@rubrong.invalid>",
        date=to_bangkok(now),
        rendered=rendered,
    )


async def send_link(mailer: Mailer, mail: OutgoingMail) -> str | None:
    """Deliver ``mail`` now; None when sent, else the reason it was not."""
    try:
        results = await mailer.send_batch([mail])
    except Exception as exc:  # a mailer should not raise: report it, never crash
        return f"{type(exc).__name__}: {exc}"
    if results and results[0].status is SendStatus.SENT:
        return None
    return (results[0].error if results else None) or "not sent"
