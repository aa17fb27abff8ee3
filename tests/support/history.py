"""The hash-chained history as the tests drive and attack it, through the real CLI.

``recompute(entries)`` checks a chain from ``history --json`` output alone (hashlib and json,
never ``workflow.store.history``: what an outside auditor would do) and returns the head;
``fire_ok`` fires one event that must succeed; ``first_part`` and ``year_goes_on`` are the two
halves of a short year an auditor keeps a head between (``first_part`` returns it);
``raw_sql`` changes the database behind the engine's back and ``rewrite_chain`` re-hashes the
chain after a change (a forger with SQL access who knows the hash rule). ``KPIS`` is a valid
proposal as ``--data`` text, ``GENESIS`` the ``prev_hash`` of the first entry.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import text

from tests.conftest import Cli, kpi_set
from workflow.store.chain import entry_hash
from workflow.store.database import Database
from workflow.store.history import HISTORY, printed

GENESIS = "0" * 64
KPIS = json.dumps(kpi_set(), ensure_ascii=False)
REQUIRED_KEYS = {
    "seq", "agreement", "kind", "event", "from", "to", "actor", "at", "recorded_at", "data",
    "prev_hash", "hash",
}  # fmt: skip


def recompute(entries: list[dict[str, Any]]) -> str:
    """Check every entry's ``prev_hash`` and ``hash`` as CONTRACT.md defines them; the head."""
    prev = GENESIS
    for position, entry in enumerate(entries, start=1):
        assert entry.keys() >= REQUIRED_KEYS, entry
        assert entry["seq"] == position, entry
        assert entry["prev_hash"] == prev, entry["seq"]
        body = {key: value for key, value in entry.items() if key != "hash"}
        payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256((prev + "\n" + payload).encode("utf-8")).hexdigest()
        assert entry["hash"] == digest, f"seq {entry['seq']}: hash does not recompute"
        prev = digest
    return prev


def fire_ok(
    cli: Cli, agreement: str, event: str, role: str, at: str, data: str | None = None
) -> None:
    """``fire`` one event through the CLI; it must succeed."""
    args = ["fire", agreement, event, "--as", role, "--at", at]
    result = cli(*args, *(["--data", data] if data else []))
    assert result.code == 0, (event, result.err)


def raw_sql(cli: Cli, statement: str, **params: Any) -> None:
    """Change the database behind the engine's back, as an attacker with SQL access would."""
    db = Database(cli.db_url)
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)
    db.dispose()


def rewrite_chain(url: str, seq: int, actor: str) -> None:
    """Alter entry ``seq`` and re-hash it and every later entry: a forger with SQL access who
    knows the hash rule. The plain chain then verifies again."""
    db = Database(url)
    with db.write() as conn:
        conn.execute(
            text("UPDATE history SET actor = :actor WHERE seq = :seq"), {"actor": actor, "seq": seq}
        )
        rows = [
            printed(row._mapping) for row in conn.execute(HISTORY.select().order_by(HISTORY.c.seq))
        ]
        prev = GENESIS
        for entry in rows:
            if entry["seq"] >= seq:
                entry["prev_hash"] = prev
                entry["hash"] = entry_hash(prev, entry)
                conn.execute(
                    text("UPDATE history SET prev_hash = :p, hash = :h WHERE seq = :s"),
                    {"p": entry["prev_hash"], "h": entry["hash"], "s": entry["seq"]},
                )
            prev = entry["hash"]
    db.dispose()


def first_part(cli: Cli) -> str:
    """TH-50 and TH-51 propose, a tick marks the others missed; the head an auditor keeps."""
    fire_ok(cli, "TH-50", "propose_kpis", "province:TH-50", "2010-09-10", KPIS)
    fire_ok(cli, "TH-51", "propose_kpis", "province:TH-51", "2010-09-11", KPIS)
    assert cli("tick", "--now", "2010-09-14T00:00", "--no-send").code == 0
    verified = cli("verify", "--json")
    assert verified.code == 0, verified.err
    head: str = verified.json()["head"]
    return head


def year_goes_on(cli: Cli) -> None:
    """More events and a later tick (deadline sweeps of sign and the KPI template)."""
    fire_ok(cli, "TH-50", "agree", "committee", "2010-09-20")
    fire_ok(cli, "TH-50", "sign", "admin", "2010-11-15")
    assert cli("tick", "--now", "2011-02-01T00:00", "--no-send").code == 0
