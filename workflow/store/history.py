"""The append-only, hash-chained history (CONTRACT.md "History and audit"): appending.

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

from sqlalchemy import Connection, func, select

from workflow.rules.timeutil import format_instant
from workflow.store.chain import GENESIS, Marks, Verification, verify_chain
from workflow.store.database import ConnectionReader, hot, hot_many
from workflow.store.read_history import COLUMNS, printed_entry
from workflow.store.tables import HistoryRow

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


def printed(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A history row (a mapping of its columns) as ``history --json`` prints it."""
    return printed_entry([row[column] for column in _COLUMN_NAMES])


_COLUMN_NAMES = tuple(name.strip() for name in COLUMNS.split(","))


_TIP = "SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1"


def chain_tip(conn: Connection) -> tuple[int, str]:
    """``(seq, hash)`` of the last entry, or ``(0, GENESIS)``."""
    row = hot(conn, _TIP).fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def append(conn: Connection, entries: Sequence[NewEntry]) -> list[int]:
    """Append entries in order; the caller holds the chain lock. Returns their ``seq``."""
    return _append(
        conn,
        (
            (e.cycle, e.agreement, e.kind, e.event, e.from_state, e.to_state, e.actor, *_when(e))
            for e in entries
        ),
    )


def append_alike(
    conn: Connection, model: NewEntry, parties: Iterable[tuple[str, str]]
) -> list[int]:
    """Append one entry per ``(agreement, state)``: ``model`` with that agreement, and
    ``from`` = ``to`` = that state (a deadline sweep's ``missed`` entries, in one go)."""
    cycle, kind, event, actor = model.cycle, model.kind, model.event, model.actor
    when = _when(model)
    return _append(
        conn, ((cycle, org, kind, event, state, state, actor, *when) for org, state in parties)
    )


def _when(entry: NewEntry) -> tuple[int, int, Mapping[str, Any]]:
    return entry.at, entry.recorded_at, entry.data


_Item = tuple[str, str | None, str, str, str | None, str | None, str, int, int, Mapping[str, Any]]
_COLUMNS = "seq, cycle_id, agreement, kind, event, from_state, to_state, actor, at, recorded_at, "
_COLUMNS += "data, prev_hash, hash"
_INSERT = f"INSERT INTO history ({_COLUMNS}) VALUES ({', '.join(['?'] * 13)})"
_encode = json.encoder.encode_basestring  # how json.dumps(ensure_ascii=False) writes a str


def _text(value: str | None) -> str:
    return "null" if value is None else _encode(value)


def _append(conn: Connection, items: Iterable[_Item]) -> list[int]:
    """Hash and insert entries; the hashed text is built directly, not by ``json.dumps``.

    The payload is exactly ``json.dumps(printed(row) minus hash, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)`` (``entry_hash``; tests check the two agree),
    written key by key in sorted order, with each distinct ``data`` and instant encoded once:
    a sweep appends 10⁵ entries that differ only in agreement and state.
    """
    seq, prev = chain_tip(conn)
    first = seq + 1
    rows: list[tuple[Any, ...]] = []
    # id(data) → (data, stored text, canonical text); holding ``data`` keeps its id unique.
    stored: dict[int, tuple[Mapping[str, Any], str, str]] = {}
    instants: dict[int, str] = {}
    for cycle, agreement, kind, event, from_state, to_state, actor, at, recorded, data in items:
        seq += 1
        if id(data) not in stored:
            if data:
                data_text = json.dumps(data, sort_keys=True, ensure_ascii=False)
                canonical = json.dumps(
                    json.loads(data_text), sort_keys=True, separators=(",", ":"), ensure_ascii=False
                )
            else:
                data_text = canonical = "{}"
            stored[id(data)] = (data, data_text, canonical)
        _, data_text, canonical = stored[id(data)]
        for moment in (at, recorded):
            if moment not in instants:
                instants[moment] = _text(format_instant(moment))
        payload = (
            f'{{"actor":{_text(actor)},"agreement":{_text(agreement)},"at":{instants[at]},'
            f'"cycle":{_text(cycle)},"data":{canonical},"event":{_text(event)},'
            f'"from":{_text(from_state)},"kind":{_text(kind)},"prev_hash":{_text(prev)},'
            f'"recorded_at":{instants[recorded]},"seq":{seq},"to":{_text(to_state)}}}'
        )
        digest = hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest()
        names = (cycle, agreement, kind, event, from_state, to_state, actor)
        rows.append((seq, *names, at, recorded, data_text, prev, digest))
        prev = digest
    if not rows:
        return []
    if len(rows) == 1:
        hot(conn, _INSERT, rows[0])
    else:
        hot_many(conn, _INSERT, rows)
    return list(range(first, seq + 1))


def verify(conn: Connection, head: str | None = None, marks: Marks | None = None) -> Verification:
    """Recompute the whole stored chain (``workflow.store.chain.verify_chain`` over this
    connection: streamed in batches, a server-side cursor on PostgreSQL)."""
    return verify_chain(ConnectionReader(conn), head, marks)


def entry_count(conn: Connection) -> int:
    """How many entries the chain holds."""
    return int(conn.execute(select(func.count()).select_from(HISTORY)).scalar_one())
