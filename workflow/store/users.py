"""Accounts: one per person (or machine): a name, a role, an e-mail, a display name, a password.

Rows are identified by their integer ``id``; a name is unique among active accounts only, so a
revoked name can be given to a new account (with new tokens: the old ones stay refused). A role
that speaks for an organisation (``province:X``, ``group:X``, ``agency:X``) must name an
organisation of the latest loaded cycle, of that kind; that organisation is the account's.

People sign in to the dashboard with a password (stored as an argon2id hash by
``argon2-cffi``) or a one-time link mailed to their address; machines call the API with tokens
(:mod:`workflow.store.tokens`: every token of an account, shown once, stored as a salted hash).
Revoking an account ends every session and token of it at once.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from workflow.rules.clock import Clock
from workflow.rules.errors import BadInput, quoted
from workflow.rules.roles import PARTY_ROLES, Role, parse_role
from workflow.rules.timeutil import format_instant
from workflow.store.database import Database
from workflow.store.repository import latest_cycle_id
from workflow.store.tables import ApiTokenRow, OrganisationRow, SessionRow, UserRow
from workflow.store.tokens import (
    VERIFIED,
    User,
    authenticate,
    insert_token,
    revoke_account_tokens,
    token_prefix,
    user_from_row,
)

__all__ = [
    "MIN_PASSWORD",
    "USERS",
    "User",
    "add_user",
    "authenticate",
    "check_email",
    "check_password",
    "find_accounts",
    "revoke_user",
    "set_password",
    "token_prefix",
    "user_rows",
]

USERS = UserRow.__table__  # type: ignore[attr-defined]
TOKENS = ApiTokenRow.__table__  # type: ignore[attr-defined]
SESSIONS = SessionRow.__table__  # type: ignore[attr-defined]
ORGANISATIONS = OrganisationRow.__table__  # type: ignore[attr-defined]
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_DISPLAY = re.compile(r"^[^\x00-\x1f\x7f]{1,120}$")
# local@domain.tld: printable ASCII without spaces, one @, a dot in the domain, no empty labels.
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@"
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when no account matches, so that "unknown" takes as long as "wrong".
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(24))


def check_email(address: str) -> str:
    """``address`` when it has the shape of an e-mail address; exit 2 otherwise."""
    if not _EMAIL.fullmatch(address) or ".." in address:
        raise BadInput(f"not an e-mail address: {quoted(address)} (expected name@example.go.th)")
    return address


def check_role_organisation(conn: Connection, role: Role) -> None:
    """Exit 2 unless a party role names an organisation of that kind in the latest cycle."""
    if role.kind not in PARTY_ROLES:
        return
    cycle = latest_cycle_id(conn)
    if cycle is None:
        raise BadInput(f"no cycle is loaded: load a cycle first, then add a user with role {role}")
    found = conn.execute(
        select(ORGANISATIONS.c.kind).where(
            ORGANISATIONS.c.cycle_id == cycle,
            ORGANISATIONS.c.id == role.org,
            ORGANISATIONS.c.active.is_(True),
        )
    ).first()
    if found is None:
        raise BadInput(f"role {role}: {role.org!r} is not an organisation of cycle {cycle}")
    if found.kind != role.kind:
        raise BadInput(
            f"role {role}: {role.org!r} is a {found.kind} of cycle {cycle}, not a {role.kind}"
        )


def _active_id(conn: Connection, name: str) -> int | None:
    row = conn.execute(
        select(USERS.c.id).where(USERS.c.name == name, USERS.c.revoked_at.is_(None))
    ).first()
    return None if row is None else int(row.id)


def add_user(
    db: Database,
    clock: Clock,
    name: str,
    role: str,
    email: str | None = None,
    display_name: str | None = None,
) -> str:
    """Create an account with ``role``; return its first API token (shown only this once)."""
    if not _NAME.match(name):
        raise BadInput(
            f"bad user name {quoted(name)}: 1–64 characters of A–Z a–z 0–9 . _ @ -, "
            "starting with a letter or digit"
        )
    parsed = parse_role(role)
    if email is not None:
        check_email(email)
    if display_name is not None and not _DISPLAY.fullmatch(display_name.strip()):
        raise BadInput(f"bad display name {quoted(display_name)}: 1–120 printable characters")
    taken = BadInput(f"user {name!r} already exists (revoke it first, or choose another name)")
    try:
        with db.write() as conn:
            check_role_organisation(conn, parsed)
            if _active_id(conn, name) is not None:
                raise taken
            now = clock.now()
            account = conn.execute(
                insert(USERS)
                .values(
                    name=name,
                    role=str(parsed),
                    email=email,
                    display_name=display_name.strip() if display_name else None,
                    created_at=now,
                    revoked_at=None,
                )
                .returning(USERS.c.id)
            ).scalar_one()
            token = insert_token(conn, int(account), now, "first")
    except IntegrityError as exc:  # a concurrent add of the same name won the unique index
        raise taken from exc
    return token


def end_sessions(conn: Connection, user_id: int, now: int) -> int:
    """End every live session of account ``user_id`` (sign-out everywhere); how many."""
    result = conn.execute(
        update(SESSIONS)
        .where(SESSIONS.c.user_id == user_id, SESSIONS.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)


def revoke_user(db: Database, clock: Clock, name: str) -> bool:
    """Revoke ``name``'s active account, its sessions and tokens; False when none is left.

    An unknown name → exit 2.
    """
    with db.write() as conn:
        account = _active_id(conn, name)
        if account is None:
            known = conn.execute(select(USERS.c.id).where(USERS.c.name == name)).first()
            if known is None:
                raise BadInput(f"unknown user {quoted(name)}")
            return False
        now = clock.now()
        conn.execute(update(USERS).where(USERS.c.id == account).values(revoked_at=now))
        end_sessions(conn, account, now)
        tokens = revoke_account_tokens(conn, account, now)
    VERIFIED.forget(*tokens)
    return True


def check_new_password(password: str) -> str:
    """``password`` when it is long enough (exit 2 otherwise)."""
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise BadInput(f"a password has at most {MAX_PASSWORD} characters")
    return password


def set_password(db: Database, name: str, password: str) -> None:
    """Set the password of the active account ``name`` (argon2id hash only)."""
    check_new_password(password)
    hashed = _HASHER.hash(password)
    with db.write() as conn:
        account = _active_id(conn, name)
        if account is None:
            raise BadInput(f"no active user {quoted(name)}")
        conn.execute(update(USERS).where(USERS.c.id == account).values(password_hash=hashed))


def find_accounts(conn: Connection, login: str) -> list[User]:
    """The active accounts a sign-in ``login`` names: the account of that name, else every
    active account with that e-mail address (case-insensitive)."""
    login = login.strip()
    if not login or len(login) > 320:
        return []
    rows = conn.execute(
        select(USERS).where(USERS.c.name == login, USERS.c.revoked_at.is_(None))
    ).all()
    if not rows and "@" in login:
        rows = conn.execute(
            select(USERS)
            .where(func.lower(USERS.c.email) == login.lower(), USERS.c.revoked_at.is_(None))
            .order_by(USERS.c.id)
            .limit(10)
        ).all()
    return [user_from_row(row) for row in rows]


def check_password(db: Database, accounts: list[User], password: str) -> User | None:
    """The one of ``accounts`` whose password is ``password``, or None.

    Always verifies at least one argon2 hash, so that an unknown login takes as long as a
    wrong password; a hash made with older parameters is upgraded on success.
    """
    if len(password) > MAX_PASSWORD:
        return None
    ids = [account.id for account in accounts]
    with db.read() as conn:
        stored = {
            int(row.id): row.password_hash
            for row in conn.execute(
                select(USERS.c.id, USERS.c.password_hash).where(
                    USERS.c.id.in_(ids), USERS.c.revoked_at.is_(None)
                )
            )
            if row.password_hash
        }
    if not stored:
        _verify(_DUMMY_HASH, password)
        return None
    for account in accounts:
        hashed = stored.get(account.id)
        if hashed is not None and _verify(hashed, password):
            if _HASHER.check_needs_rehash(hashed):
                with db.write() as conn:
                    conn.execute(
                        update(USERS)
                        .where(USERS.c.id == account.id)
                        .values(password_hash=_HASHER.hash(password))
                    )
            return account
    return None


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def user_rows(conn: Connection) -> list[dict[str, Any]]:
    """Every account, by name then age: never a token, a password or their hashes."""
    first_token = {
        int(row.user_id): row.token_prefix
        for row in conn.execute(
            select(TOKENS.c.user_id, TOKENS.c.token_prefix).order_by(TOKENS.c.id.desc())
        )
    }  # descending: the oldest token of each account wins
    return [
        {
            "id": row.id,
            "name": row.name,
            "role": row.role,
            "email": row.email,
            "display_name": row.display_name,
            "organisation": parse_role(row.role).org,
            "has_password": row.password_hash is not None,
            "revoked": row.revoked_at is not None,
            "active": row.revoked_at is None,
            "token_prefix": first_token.get(int(row.id), row.token_prefix),
            "created_at": format_instant(row.created_at),
            "revoked_at": format_instant(row.revoked_at),
        }
        for row in conn.execute(select(USERS).order_by(USERS.c.name, USERS.c.id))
    ]
