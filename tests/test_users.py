"""Accounts: ``user add|list|revoke`` on both backends (CONTRACT.md "Additions": Users).

Tokens are stored only as salted scrypt hashes; a party role must name an organisation of the
latest loaded cycle; a revoked name can be given to a new account while the old token stays
refused; refusals exit 2 with one line and write nothing.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.conftest import CYCLE_2554, Cli
from workflow.store.database import Database
from workflow.store.tokens import TOKENS, VERIFIED
from workflow.store.users import USERS, authenticate, check_password, find_accounts

ROLES = [
    "admin",
    "province:TH-50",
    "group:north-upper-1",
    "committee",
    "evaluator",
    "auditor",
]
AGENCY = """
[[organisations]]
id = "opdc-1"
kind = "agency"
name_th = "สำนักงาน ก.พ.ร."
email = "saraban@opdc-1.rubrong.example"
supervisor_email = "boss@opdc-1.rubrong.example"
"""


def _add(cli: Cli, name: str, role: str, *more: str) -> str:
    result = cli("user", "add", name, "--role", role, *more)
    assert result.code == 0, result.err
    return result.out.splitlines()[-1]


def _refused(cli: Cli, *args: str) -> str:
    """Run a command that must exit 2 with one line on stderr and nothing on stdout."""
    result = cli(*args)
    assert result.code == 2, (args, result.out, result.err)
    assert result.out == ""
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err
    return result.err


def _stored(cli: Cli) -> list[dict[str, object]]:
    with Database(cli.db_url).read() as conn:
        return [dict(row._mapping) for row in conn.execute(select(USERS).order_by(USERS.c.id))]


def _tokens(cli: Cli) -> list[dict[str, object]]:
    with Database(cli.db_url).read() as conn:
        return [dict(row._mapping) for row in conn.execute(select(TOKENS).order_by(TOKENS.c.id))]


def test_add_prints_a_token_once_and_stores_only_a_salted_hash(loaded: Cli) -> None:
    cli = loaded
    tokens = {role: _add(cli, f"user{index}", role) for index, role in enumerate(ROLES)}
    assert len(set(tokens.values())) == len(ROLES)
    assert all(len(token) >= 40 for token in tokens.values())
    rows = _tokens(cli)
    stored = repr(rows) + repr(_stored(cli))
    for token in tokens.values():
        assert token not in stored  # neither the token nor ...
        assert token[8:] not in stored  # ... its secret part is in the database
    assert len(rows) == len(ROLES)
    assert all(str(row["token_hash"]).startswith("scrypt$") for row in rows)
    assert len({row["token_salt"] for row in rows}) == len(rows)  # a salt per token
    db = Database(cli.db_url)
    for role, token in tokens.items():
        user = authenticate(db, token)
        assert user is not None and str(user.role) == role
    listed = cli("user", "list", "--json").json()
    assert [(u["name"], u["role"], u["email"], u["revoked"]) for u in listed] == [
        (f"user{index}", role, None, False) for index, role in enumerate(ROLES)
    ]
    assert not any("token_hash" in u or "token_salt" in u for u in listed)
    text = cli("user", "list").out
    assert not any(token in text for token in tokens.values())
    assert "user1" in text and "province:TH-50" in text and "active" in text


def test_an_email_is_kept_and_its_shape_checked(loaded: Cli) -> None:
    _add(loaded, "somsri", "province:TH-50", "--email", "somsri@th-50.go.th")
    for bad in ("somsri", "a@b", "a b@c.go.th", "a@@c.go.th", "@c.go.th", "a@c..go.th", "a@-c.th"):
        err = _refused(loaded, "user", "add", "other", "--role", "auditor", "--email", bad)
        assert "not an e-mail address" in err, (bad, err)
    listed = loaded("user", "list", "--json").json()
    assert [(u["name"], u["email"]) for u in listed] == [("somsri", "somsri@th-50.go.th")]
    assert "somsri@th-50.go.th" in loaded("user", "list").out


def test_party_roles_need_an_organisation_of_the_latest_cycle(cli: Cli, tmp_path: Path) -> None:
    err = _refused(cli, "user", "add", "p50", "--role", "province:TH-50")
    assert "no cycle is loaded" in err and "load a cycle first" in err
    _add(cli, "ops", "admin")  # roles of no organisation need no cycle
    assert cli("load", str(CYCLE_2554)).code == 0
    for role, words in [
        ("province:TH-99", "'TH-99' is not an organisation of cycle 2554"),
        ("agency:opdc-1", "'opdc-1' is not an organisation of cycle 2554"),
        ("province:north-upper-1", "'north-upper-1' is a group of cycle 2554, not a province"),
        ("group:TH-50", "'TH-50' is a province of cycle 2554, not a group"),
    ]:
        assert words in _refused(cli, "user", "add", "someone", "--role", role), role
    assert [row["name"] for row in _stored(cli)] == ["ops"]  # nothing written
    _add(cli, "p50", "province:TH-50")
    _add(cli, "north", "group:north-upper-1")
    later = tmp_path / "cycle_2555.toml"
    text = CYCLE_2554.read_text(encoding="utf-8").replace('id = "2554"', 'id = "2555"', 1)
    later.write_text(text + AGENCY, encoding="utf-8")
    loaded = cli("load", str(later))
    assert loaded.code == 0, loaded.err
    _add(cli, "opdc", "agency:opdc-1")  # an organisation of the latest cycle now
    assert [row["role"] for row in _stored(cli)] == [
        "admin",
        "province:TH-50",
        "group:north-upper-1",
        "agency:opdc-1",
    ]


def test_wrong_forged_and_revoked_tokens_do_not_authenticate(loaded: Cli) -> None:
    token = _add(loaded, "somchai", "province:TH-50")
    db = Database(loaded.db_url)
    assert authenticate(db, token) is not None
    assert authenticate(db, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert authenticate(db, token[:8] + "x" * 35) is None  # right prefix, wrong secret
    assert authenticate(db, "") is None
    assert authenticate(db, "' OR 1=1 --") is None
    assert authenticate(db, token + "\x00") is None
    result = loaded("user", "revoke", "somchai")
    assert result.code == 0 and "revoked somchai" in result.err
    assert authenticate(db, token) is None
    again = loaded("user", "revoke", "somchai")
    assert again.code == 0 and "already revoked" in again.err
    listed = loaded("user", "list", "--json").json()
    assert listed[0]["revoked"] is True and listed[0]["revoked_at"] is not None
    assert "revoked" in loaded("user", "list").out


def test_a_revoked_name_is_reused_by_a_new_account_and_the_old_token_stays_refused(
    loaded: Cli,
) -> None:
    db = Database(loaded.db_url)
    first = _add(loaded, "somchai", "province:TH-50", "--email", "old@th-50.go.th")
    taken = _refused(loaded, "user", "add", "somchai", "--role", "auditor")
    assert "user 'somchai' already exists" in taken
    assert loaded("user", "revoke", "somchai").code == 0
    second = _add(loaded, "somchai", "province:TH-51", "--email", "new@th-51.go.th")
    assert second != first
    assert authenticate(db, first) is None
    user = authenticate(db, second)
    assert user is not None and str(user.role) == "province:TH-51"
    listed = loaded("user", "list", "--json").json()
    assert [(u["name"], u["role"], u["email"], u["revoked"]) for u in listed] == [
        ("somchai", "province:TH-50", "old@th-50.go.th", True),
        ("somchai", "province:TH-51", "new@th-51.go.th", False),
    ]
    assert len({u["id"] for u in listed}) == 2  # two accounts, one name
    assert loaded("user", "revoke", "somchai").code == 0  # revokes the active one
    assert authenticate(db, second) is None and authenticate(db, first) is None
    assert "already revoked" in loaded("user", "revoke", "somchai").err
    assert "unknown user 'nobody'" in _refused(loaded, "user", "revoke", "nobody")


def test_the_verified_token_memory_never_outlives_a_revocation(loaded: Cli) -> None:
    db = Database(loaded.db_url)
    token = _add(loaded, "cached", "auditor")
    user = authenticate(db, token)
    assert user is not None and authenticate(db, token) == user  # now remembered
    (row,) = _stored(loaded)
    assert user.id == row["id"]
    (first_token,) = _tokens(loaded)
    assert any(key[0] == first_token["id"] for key in VERIFIED._seen)  # keyed by token id
    with db.write() as conn:  # another process revokes: this one's memory is not told
        conn.execute(update(USERS).where(USERS.c.id == user.id).values(revoked_at=1))
    assert authenticate(db, token) is None
    replacement = _add(loaded, "cached", "auditor")
    found = authenticate(db, replacement)
    assert found is not None and found.id != user.id and found.name == "cached"
    assert any(key[0] == _tokens(loaded)[-1]["id"] for key in VERIFIED._seen)
    assert authenticate(db, token) is None
    assert loaded("user", "revoke", "cached").code == 0
    replacement_id = _tokens(loaded)[-1]["id"]
    assert not any(key[0] == replacement_id for key in VERIFIED._seen)
    assert authenticate(db, replacement) is None


def test_bad_names_roles_and_duplicates_exit_2(loaded: Cli) -> None:
    cli = loaded
    assert "unknown role 'governor'" in _refused(cli, "user", "add", "x", "--role", "governor")
    _refused(cli, "user", "add", "x", "--role", "province:")
    _refused(cli, "user", "add", "x", "--role", "province:TH-50; DROP TABLE users")
    assert "bad user name" in _refused(cli, "user", "add", "no spaces", "--role", "admin")
    _add(cli, "dup", "auditor")
    assert "already exists" in _refused(cli, "user", "add", "dup", "--role", "admin")
    _refused(cli, "user", "revoke", "nobody")
    assert [u["role"] for u in cli("user", "list", "--json").json()] == ["auditor"]


def test_the_last_line_is_the_token_for_scripts(sqlite_cli: Cli) -> None:
    result = sqlite_cli.subprocess("user", "add", "ops", "--role", "admin", "--email", "o@x.th")
    assert result.code == 0, result.err
    token = result.out.strip().splitlines()[-1]
    assert " " not in token
    user = authenticate(Database(sqlite_cli.db_url), token)
    assert user is not None and user.name == "ops" and user.is_admin


def test_api_tokens_are_added_listed_revoked_and_rotated(loaded: Cli) -> None:
    db = Database(loaded.db_url)
    first = _add(loaded, "robot", "auditor")
    added = loaded("user", "token", "add", "robot", "--label", "nightly export")
    assert added.code == 0, added.err
    second = added.out.splitlines()[-1]
    assert second != first and authenticate(db, second) is not None
    listed = loaded("user", "token", "list", "robot", "--json").json()
    assert [(t["prefix"], t["label"], t["revoked"]) for t in listed] == [
        (first[:8], "first", False),
        (second[:8], "nightly export", False),
    ]
    assert all(t["created_at"] and t["last_used_at"] is None for t in listed)
    text = loaded("user", "token", "list", "robot").out
    assert first not in text and second not in text and first[:8] in text
    assert loaded("user", "token", "revoke", "robot", first[:8]).code == 0
    assert authenticate(db, first) is None and authenticate(db, second) is not None
    assert "no active token" in _refused(loaded, "user", "token", "revoke", "robot", first[:8])
    rotated = loaded("user", "token", "rotate", "robot", second[:8])
    assert rotated.code == 0, rotated.err
    third = rotated.out.splitlines()[-1]
    assert authenticate(db, second) is None  # the old value stops working at once
    user = authenticate(db, third)
    assert user is not None and user.name == "robot"
    listed = loaded("user", "token", "list", "robot", "--json").json()
    assert [(t["label"], t["revoked"]) for t in listed] == [
        ("first", True),
        ("nightly export", True),
        ("nightly export", False),  # the label goes on
    ]
    assert not any("hash" in key or "salt" in key for t in listed for key in t)
    assert "unknown user" in _refused(loaded, "user", "token", "list", "nobody")
    assert "no active user" in _refused(loaded, "user", "token", "add", "nobody")
    assert loaded("user", "revoke", "robot").code == 0
    assert authenticate(db, third) is None
    assert all(t["revoked"] for t in loaded("user", "token", "list", "robot", "--json").json())


def test_a_password_is_set_from_stdin_and_stored_as_argon2(
    loaded: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(loaded, "somsri", "province:TH-50", "--email", "somsri@th-50.go.th")
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert "at least 12 characters" in _refused(loaded, "user", "passwd", "somsri")
    assert _stored(loaded)[0]["password_hash"] is None  # nothing written
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse battery\n"))
    result = loaded("user", "passwd", "somsri")
    assert result.code == 0, result.err
    stored = str(_stored(loaded)[0]["password_hash"])
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    db = Database(loaded.db_url)
    with db.read() as conn:
        accounts = find_accounts(conn, "SomSri@TH-50.go.th")  # by e-mail, any case
    assert [a.name for a in accounts] == ["somsri"]
    assert check_password(db, accounts, "correct horse battery") == accounts[0]
    assert check_password(db, accounts, "correct horse battery!") is None
    monkeypatch.setattr(sys, "stdin", io.StringIO("another long password\n"))
    assert "no active user" in _refused(loaded, "user", "passwd", "nobody")
    listed = loaded("user", "list", "--json").json()
    assert listed[0]["has_password"] is True and listed[0]["display_name"] is None
