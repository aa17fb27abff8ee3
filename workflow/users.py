"""API users: a name, a role and a token that is shown once and stored only as a salted hash.

A token is ``secrets.token_urlsafe(32)`` (256 random bits). The database keeps its first
``PREFIX_LENGTH`` characters in ``token_prefix`` (not secret: it only finds the row), a
per-user random salt, and ``scrypt(token, salt)``. Checking a token reads the row by prefix,
refuses a revoked one, and compares hashes in constant time. scrypt is deliberately slow, so a
process remembers the tokens it has already checked against a stored hash (by their SHA-256,
never the token itself); a revocation is still seen at once because the row is read every time.
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

from workflow.clock import Clock
from workflow.errors import BadInput
from workflow.roles import Role, parse_role
from workflow.store import Database
from workflow.tables import UserRow
from workflow.timeutil import format_instant

USERS = UserRow.__table__  # type: ignore[attr-defined]
PREFIX_LENGTH = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,200}$")


@dataclass(frozen=True)
class User:
    """An authenticated API user."""

    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        """Whether the user is OPDC staff (``admin``)."""
        return self.role.kind == "admin"


def _hash(token: str, salt: bytes) -> str:
    digest = hashlib.scrypt(
        token.encode("ascii"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${digest.hex()}"


def _check(token: str, salt_hex: str, stored: str) -> bool:
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


def add_user(db: Database, clock: Clock, name: str, role: str) -> str:
    """Create a user with ``role``; return its new token (the only time it is ever known)."""
    if not _NAME.match(name):
        raise BadInput(
            f"bad user name {name!r}: 1–64 characters of A–Z a–z 0–9 . _ @ -, "
            "starting with a letter or digit"
        )
    parsed = parse_role(role)
    token = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    with db.write() as conn:
        if conn.execute(select(USERS.c.name).where(USERS.c.name == name)).first() is not None:
            raise BadInput(f"user {name!r} already exists (revoke it and choose another name)")
        conn.execute(
            insert(USERS).values(
                name=name,
                role=str(parsed),
                token_salt=salt.hex(),
                token_hash=_hash(token, salt),
                token_prefix=token[:PREFIX_LENGTH],
                created_at=clock.now(),
                revoked_at=None,
            )
        )
    return token


def revoke_user(db: Database, clock: Clock, name: str) -> bool:
    """Revoke ``name``'s token; False when it already was. Unknown user → exit 2."""
    with db.write() as conn:
        row = conn.execute(select(USERS.c.revoked_at).where(USERS.c.name == name)).first()
        if row is None:
            raise BadInput(f"unknown user {name!r}")
        if row.revoked_at is not None:
            return False
        conn.execute(update(USERS).where(USERS.c.name == name).values(revoked_at=clock.now()))
    _VERIFIED.forget(name)
    return True


def user_rows(conn: Connection) -> list[dict[str, Any]]:
    """Every user, by name: never the token or its hash."""
    return [
        {
            "name": row.name,
            "role": row.role,
            "token_prefix": row.token_prefix,
            "created_at": format_instant(row.created_at),
            "revoked_at": format_instant(row.revoked_at),
            "active": row.revoked_at is None,
        }
        for row in conn.execute(select(USERS).order_by(USERS.c.name))
    ]


class _VerifiedCache:
    """SHA-256 of tokens already checked against a user's stored hash, to skip scrypt."""

    def __init__(self, limit: int = 4096) -> None:
        self._seen: dict[tuple[str, str, str], None] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def knows(self, key: tuple[str, str, str]) -> bool:
        with self._lock:
            return key in self._seen

    def add(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            if len(self._seen) >= self._limit:
                self._seen.clear()
            self._seen[key] = None

    def forget(self, name: str) -> None:
        with self._lock:
            for key in [k for k in self._seen if k[0] == name]:
                del self._seen[key]


_VERIFIED = _VerifiedCache()


def token_prefix(token: str) -> str | None:
    """The lookup prefix of a well-formed token, else None (so junk never reaches the DB)."""
    return token[:PREFIX_LENGTH] if _TOKEN.match(token) else None


def authenticate(db: Database, token: str) -> User | None:
    """The active user holding ``token``, or None (unknown, malformed or revoked)."""
    prefix = token_prefix(token)
    if prefix is None:
        return None
    with db.read() as conn:
        rows = conn.execute(select(USERS).where(USERS.c.token_prefix == prefix)).all()
    fingerprint = hashlib.sha256(token.encode("ascii")).hexdigest()
    for row in rows:
        if row.revoked_at is not None:
            continue
        key = (row.name, row.token_hash, fingerprint)
        if _VERIFIED.knows(key) or _check(token, row.token_salt, row.token_hash):
            _VERIFIED.add(key)
            return User(row.name, parse_role(row.role))
    return None
