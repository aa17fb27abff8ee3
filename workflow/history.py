"""The append-only, hash-chained history (CONTRACT.md "History and audit").

``hash = sha256(prev_hash + "\\n" + json.dumps(entry, sort_keys=True, separators=(",", ":"),
ensure_ascii=False))`` where ``entry`` is the printed entry minus ``hash``; the first
``prev_hash`` is 64 zeros. Anyone can recompute the chain from ``history --json`` alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select

from workflow.errors import IntegrityFailure
from workflow.tables import HistoryRow
from workflow.timeutil import format_instant

GENESIS = "0" * 64
HISTORY = HistoryRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class NewEntry:
    """An entry to append; ``seq``, ``prev_hash`` and ``hash`` are assigned on append."""

    cycle: str
    agreement: str | None
    kind: str
    event: str
    from_state: str | None
    to_state: str | None
    actor: str
    at: int
    recorded_at: int
    data: Mapping[str, Any]


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """The contract's hash of one printed entry (``hash`` key excluded)."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


def printed(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A history row as ``history --json`` prints it."""
    return {
        "seq": row["seq"],
        "cycle": row["cycle_id"],
        "agreement": row["agreement"],
        "kind": row["kind"],
        "event": row["event"],
        "from": row["from_state"],
        "to": row["to_state"],
        "actor": row["actor"],
        "at": format_instant(row["at"]),
        "recorded_at": format_instant(row["recorded_at"]),
        "data": json.loads(row["data"]),
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }


def chain_tip(conn: Connection) -> tuple[int, str]:
    """``(seq, hash)`` of the last entry, or ``(0, GENESIS)``."""
    row = conn.execute(
        select(HISTORY.c.seq, HISTORY.c.hash).order_by(HISTORY.c.seq.desc()).limit(1)
    ).first()
    return (0, GENESIS) if row is None else (int(row.seq), str(row.hash))


def append(conn: Connection, entries: Sequence[NewEntry]) -> list[int]:
    """Append entries in order; the caller holds the chain lock. Returns their ``seq``."""
    if not entries:
        return []
    seq, prev = chain_tip(conn)
    rows: list[dict[str, Any]] = []
    for entry in entries:
        seq += 1
        data_text = json.dumps(entry.data, sort_keys=True, ensure_ascii=False)
        row: dict[str, Any] = {
            "seq": seq,
            "cycle_id": entry.cycle,
            "agreement": entry.agreement,
            "kind": entry.kind,
            "event": entry.event,
            "from_state": entry.from_state,
            "to_state": entry.to_state,
            "actor": entry.actor,
            "at": entry.at,
            "recorded_at": entry.recorded_at,
            "data": data_text,
            "prev_hash": prev,
        }
        row["hash"] = prev = entry_hash(prev, printed({**row, "hash": ""}))
        rows.append(row)
    conn.execute(insert(HISTORY), rows)
    return [row["seq"] for row in rows]


@dataclass(frozen=True)
class Verification:
    """The outcome of recomputing the chain."""

    ok: bool
    entries: int
    head: str
    first_bad: int | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The ``verify --json`` object."""
        out: dict[str, Any] = {"ok": self.ok, "entries": self.entries, "head": self.head}
        if not self.ok:
            out["first_bad_seq"] = self.first_bad
            out["reason"] = self.reason
        return out


def verify_entries(entries: Iterable[Mapping[str, Any]], head: str | None = None) -> Verification:
    """Recompute a chain of printed entries in ``seq`` order; name the first bad one."""
    prev, expected_seq, count = GENESIS, 1, 0
    for entry in entries:
        seq = entry["seq"]
        if seq != expected_seq:
            reason = f"entry {expected_seq} is missing (next is {seq})"
            return Verification(False, count, prev, expected_seq, reason)
        if entry["prev_hash"] != prev:
            return Verification(False, count, prev, seq, f"entry {seq}: prev_hash does not match")
        if entry_hash(prev, entry) != entry["hash"]:
            return Verification(False, count, prev, seq, f"entry {seq}: content was altered")
        prev, expected_seq, count = entry["hash"], expected_seq + 1, count + 1
    if head is not None and head != prev:
        reason = f"the chain ends at {prev}, not at the given head {head}"
        return Verification(False, count, prev, expected_seq, reason)
    return Verification(True, count, prev)


def verify(conn: Connection, head: str | None = None) -> Verification:
    """Recompute the whole stored chain, streaming rows in ``seq`` order."""
    result = conn.execution_options(yield_per=5000).execute(select(HISTORY).order_by(HISTORY.c.seq))
    return verify_entries((printed(row._mapping) for row in result), head)


def entry_count(conn: Connection) -> int:
    """How many entries the chain holds."""
    return int(conn.execute(select(func.count()).select_from(HISTORY)).scalar_one())


def require_valid(verification: Verification) -> None:
    """Raise ``IntegrityFailure`` (exit 6) unless the chain verified."""
    if not verification.ok:
        raise IntegrityFailure(
            f"history chain broken at seq {verification.first_bad}: {verification.reason}"
        )
