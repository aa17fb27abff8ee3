"""API tokens (for machines): every token of an account, shown once, stored as a salted hash.

A token is ``secrets.token_urlsafe(32)`` (256 random bits). The ``api_tokens`` row keeps its
first ``PREFIX_LENGTH`` characters (not secret: it only finds the row), a random salt and
``scrypt(token, salt)``; a label, when it was created, last used (written at most once a minute)
and revoked. Checking a token reads the rows by prefix, refuses revoked tokens and tokens of
revoked accounts, and compares hashes in constant time. scrypt is deliberately slow, so a
process remembers the tokens it has already checked against a stored hash (by their SHA-256,
never the token itself), keyed by token id; a revocation is still seen at once because the row
is read every time, and revoking also drops the token's entries from that memory.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from workflow.rules.clock import Clock
from workflow.rules.errors import BadInput, quoted
from workflow.rules.roles import Role, parse_role
from workflow.rules.timeutil import format_instant
from workflow.store.database import Database
from workflow.store.tables import ApiTokenRow, UserRow

USERS = UserRow.__table__  # type: ignore[attr-defined]
TOKENS = ApiTokenRow.__table__  # type: ignore[attr-defined]
PREFIX_LENGTH = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
LAST_USED_EVERY = 60  # seconds: ``last_used_at`` is written at most this often
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,200}$")
_LABEL = re.compile(r"^[^\x00-\x1f\x7f]{1,80}$")


@dataclass(frozen=True)
class User:
    """An authenticated account (a person or a machine)."""

    id: int
    name: str
    role: Role
    email: str | None = None
    display_name: str | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the account is OPDC staff (``admin``)."""
        return self.role.kind == "admin"

    @property
    def shown_name(self) -> str:
        """The display name when set, else the account name."""
        return self.display_name or self.name


def user_from_row(row: Any) -> User:
    """A :class:`User` from a ``users`` row (``id``, ``name``, ``role``, ``email``…)."""
    return User(int(row.id), row.name, parse_role(row.role), row.email, row.display_name)


def scrypt_hash(token: str, salt: bytes) -> str:
    """``scrypt$N$r$p$hex``: the stored hash of ``token`` with ``salt``."""
    digest = hashlib.scrypt(
        token.encode("ascii"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${digest.hex()}"


def scrypt_check(token: str, salt_hex: str, stored: str) -> bool:
    """Whether ``token`` hashes to ``stored`` with the hex ``salt`` (constant-time compare)."""
    try:
        scheme, n, r, p, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            token.encode("ascii"),
            salt=bytes.fromhex(salt_hex),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest) // 2,
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


def token_prefix(token: str) -> str | None:
    """The lookup prefix of a well-formed token, else None (so junk never reaches the DB)."""
    return token[:PREFIX_LENGTH] if _TOKEN.match(token) else None


def insert_token(conn: Connection, user_id: int, now: int, label: str | None) -> str:
    """Store a new token for account ``user_id`` in ``conn``'s transaction; return it."""
    if label is not None and not _LABEL.fullmatch(label):
        raise BadInput(f"bad token label {quoted(label)}: 1–80 printable characters")
    token = secrets.token_urlsafe(32)
    while token[0] in "-_":  # its prefix is typed on command lines: never like an option
        token = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    conn.execute(
        insert(TOKENS).values(
            user_id=user_id,
            label=label,
            token_prefix=token[:PREFIX_LENGTH],
            token_salt=salt.hex(),
            token_hash=scrypt_hash(token, salt),
            created_at=now,
        )
    )
    return token


def active_account(conn: Connection, name: str) -> int:
    """The id of the active account called ``name``; exit 2 when there is none."""
    row = conn.execute(
        select(USERS.c.id).where(USERS.c.name == name, USERS.c.revoked_at.is_(None))
    ).first()
    if row is None:
        raise BadInput(f"no active user {quoted(name)}")
    return int(row.id)


def add_token(db: Database, clock: Clock, name: str, label: str | None = None) -> str:
    """A new token for the active account ``name`` (printed once by the CLI)."""
    with db.write() as conn:
        return insert_token(conn, active_account(conn, name), clock.now(), label)


def _token_id(conn: Connection, user_id: int, prefix: str) -> int:
    rows = conn.execute(
        select(TOKENS.c.id).where(
            TOKENS.c.user_id == user_id,
            TOKENS.c.token_prefix == prefix,
            TOKENS.c.revoked_at.is_(None),
        )
    ).all()
    if not rows:
        raise BadInput(f"no active token with prefix {quoted(prefix)} for this user")
    if len(rows) > 1:  # 48 random bits: practically never, but never revoke the wrong one
        raise BadInput(f"several active tokens start with {quoted(prefix)}; revoke the account")
    return int(rows[0].id)


def revoke_token(db: Database, clock: Clock, name: str, prefix: str) -> None:
    """Revoke the active token of ``name`` starting with ``prefix``; unknown → exit 2."""
    with db.write() as conn:
        found = _token_id(conn, active_account(conn, name), prefix)
        conn.execute(update(TOKENS).where(TOKENS.c.id == found).values(revoked_at=clock.now()))
    VERIFIED.forget(found)


def rotate_token(db: Database, clock: Clock, name: str, prefix: str) -> str:
    """Revoke the token ``prefix`` and issue a new one with its label, in one transaction."""
    with db.write() as conn:
        account = active_account(conn, name)
        found = _token_id(conn, account, prefix)
        label = conn.execute(select(TOKENS.c.label).where(TOKENS.c.id == found)).scalar_one()
        now = clock.now()
        conn.execute(update(TOKENS).where(TOKENS.c.id == found).values(revoked_at=now))
        token = insert_token(conn, account, now, label)
    VERIFIED.forget(found)
    return token


def revoke_account_tokens(conn: Connection, user_id: int, now: int) -> list[int]:
    """Revoke every active token of account ``user_id``; return their ids."""
    ids = [
        int(row.id)
        for row in conn.execute(
            select(TOKENS.c.id).where(TOKENS.c.user_id == user_id, TOKENS.c.revoked_at.is_(None))
        )
    ]
    if ids:
        conn.execute(update(TOKENS).where(TOKENS.c.id.in_(ids)).values(revoked_at=now))
    return ids


def token_rows(conn: Connection, name: str) -> list[dict[str, Any]]:
    """The tokens of the account(s) called ``name``, oldest first: never a token or its hash."""
    accounts = [int(r.id) for r in conn.execute(select(USERS.c.id).where(USERS.c.name == name))]
    if not accounts:
        raise BadInput(f"unknown user {quoted(name)}")
    query = select(TOKENS).where(TOKENS.c.user_id.in_(accounts)).order_by(TOKENS.c.id)
    return [
        {
            "prefix": row.token_prefix,
            "label": row.label,
            "user_id": row.user_id,
            "created_at": format_instant(row.created_at),
            "last_used_at": format_instant(row.last_used_at),
            "revoked": row.revoked_at is not None,
            "revoked_at": format_instant(row.revoked_at),
        }
        for row in conn.execute(query)
    ]


_Key = tuple[int, str, str]  # (token id, stored hash, SHA-256 of the token)


class VerifiedCache:
    """SHA-256 of tokens already checked against a stored hash, to skip scrypt."""

    def __init__(self, limit: int = 4096) -> None:
        self._seen: dict[_Key, None] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def knows(self, key: _Key) -> bool:
        """Whether ``key`` was verified before."""
        with self._lock:
            return key in self._seen

    def add(self, key: _Key) -> None:
        """Remember a verified ``key``."""
        with self._lock:
            if len(self._seen) >= self._limit:
                self._seen.clear()
            self._seen[key] = None

    def forget(self, *token_ids: int) -> None:
        """Drop every entry of these tokens."""
        gone = set(token_ids)
        with self._lock:
            for key in [k for k in self._seen if k[0] in gone]:
                del self._seen[key]


VERIFIED = VerifiedCache()


def authenticate(db: Database, token: str, clock: Clock | None = None) -> User | None:
    """The active account holding the active ``token``, or None (unknown, malformed, revoked).

    With ``clock``, the token's ``last_used_at`` is recorded (at most once a minute).
    """
    prefix = token_prefix(token)
    if prefix is None:
        return None
    query = (
        select(
            TOKENS.c.id.label("token_id"),
            TOKENS.c.token_salt,
            TOKENS.c.token_hash,
            TOKENS.c.last_used_at,
            USERS.c.id,
            USERS.c.name,
            USERS.c.role,
            USERS.c.email,
            USERS.c.display_name,
        )
        .join(USERS, USERS.c.id == TOKENS.c.user_id)
        .where(
            TOKENS.c.token_prefix == prefix,
            TOKENS.c.revoked_at.is_(None),
            USERS.c.revoked_at.is_(None),
        )
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    fingerprint = hashlib.sha256(token.encode("ascii")).hexdigest()
    for row in rows:
        token_id = int(row.token_id)
        key = (token_id, row.token_hash, fingerprint)
        if VERIFIED.knows(key) or scrypt_check(token, row.token_salt, row.token_hash):
            VERIFIED.add(key)
            if clock is not None:
                _touch(db, token_id, row.last_used_at, clock.now())
            return user_from_row(row)
    return None


def _touch(db: Database, token_id: int, last_used: int | None, now: int) -> None:
    if last_used is not None and now - last_used < LAST_USED_EVERY and now >= last_used:
        return
    with db.write() as conn:
        conn.execute(update(TOKENS).where(TOKENS.c.id == token_id).values(last_used_at=now))
