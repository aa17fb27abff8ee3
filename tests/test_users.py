"""API users: ``user add|list|revoke``, tokens stored only as salted scrypt hashes."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import Cli
from workflow.store import Database
from workflow.users import USERS, authenticate

ROLES = [
    "admin",
    "province:TH-50",
    "group:north-upper-1",
    "agency:opdc-1",
    "committee",
    "evaluator",
    "auditor",
]


def _add(cli: Cli, name: str, role: str) -> str:
    result = cli("user", "add", name, "--role", role)
    assert result.code == 0, result.err
    return result.out.splitlines()[-1]


def test_add_prints_a_token_once_and_stores_only_a_salted_hash(cli: Cli) -> None:
    tokens = {role: _add(cli, f"user{index}", role) for index, role in enumerate(ROLES)}
    assert len(set(tokens.values())) == len(ROLES)
    assert all(len(token) >= 40 for token in tokens.values())
    db = Database(cli.db_url)
    with db.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(USERS))]
    stored = repr(rows)
    for token in tokens.values():
        assert token not in stored  # neither the token nor ...
        assert token[8:] not in stored  # ... its secret part is in the database
    assert all(row["token_hash"].startswith("scrypt$") for row in rows)
    assert len({row["token_salt"] for row in rows}) == len(rows)  # a salt per user
    for role, token in tokens.items():
        user = authenticate(db, token)
        assert user is not None and str(user.role) == role
    listed = cli("user", "list", "--json").json()
    assert [(u["name"], u["role"], u["active"]) for u in listed] == [
        (f"user{index}", role, True) for index, role in enumerate(ROLES)
    ]
    assert not any(token in cli("user", "list").out for token in tokens.values())


def test_wrong_forged_and_revoked_tokens_do_not_authenticate(cli: Cli) -> None:
    token = _add(cli, "somchai", "province:TH-50")
    db = Database(cli.db_url)
    assert authenticate(db, token) is not None
    assert authenticate(db, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert authenticate(db, token[:8] + "x" * 35) is None  # right prefix, wrong secret
    assert authenticate(db, "") is None
    assert authenticate(db, "' OR 1=1 --") is None
    assert authenticate(db, token + "\x00") is None
    result = cli("user", "revoke", "somchai")
    assert result.code == 0 and "revoked somchai" in result.err
    assert authenticate(db, token) is None
    again = cli("user", "revoke", "somchai")
    assert again.code == 0 and "already revoked" in again.err
    listed = cli("user", "list", "--json").json()
    assert listed[0]["active"] is False and listed[0]["revoked_at"] is not None
    assert "revoked" in cli("user", "list").out


def test_bad_names_roles_and_duplicates_exit_2(cli: Cli) -> None:
    bad_role = cli("user", "add", "x", "--role", "governor")
    assert bad_role.code == 2 and "unknown role 'governor'" in bad_role.err
    assert bad_role.out == ""
    assert cli("user", "add", "x", "--role", "province:").code == 2
    assert cli("user", "add", "x", "--role", "province:TH-50; DROP TABLE users").code == 2
    bad_name = cli("user", "add", "no spaces", "--role", "admin")
    assert bad_name.code == 2 and "bad user name" in bad_name.err
    _add(cli, "dup", "auditor")
    duplicate = cli("user", "add", "dup", "--role", "admin")
    assert duplicate.code == 2 and "already exists" in duplicate.err
    assert cli("user", "revoke", "nobody").code == 2
    assert [u["role"] for u in cli("user", "list", "--json").json()] == ["auditor"]


def test_the_last_line_is_the_token_for_scripts(sqlite_cli: Cli) -> None:
    result = sqlite_cli.subprocess("user", "add", "ops", "--role", "admin")
    assert result.code == 0, result.err
    token = result.out.strip().splitlines()[-1]
    assert " " not in token
    user = authenticate(Database(sqlite_cli.db_url), token)
    assert user is not None and user.name == "ops" and user.is_admin
