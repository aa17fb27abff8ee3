"""The append-only, hash-chained history (CONTRACT.md "History and audit").

``hash = sha256(prev_hash + "\\n" + json.dumps(entry, sort_keys=True, separators=(",", ":"),
ensure_ascii=False))`` where ``entry`` is the printed entry minus ``hash``; the first
``prev_hash`` is 64 zeros. Anyone can recompute the chain from ``history --json`` alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from workflow.rules.errors import IntegrityFailure
from workflow.rules.timeutil import BANGKOK, format_instant
from workflow.store.database import hot, hot_many
from workflow.store.read_history import COLUMNS, printed_entry
from workflow.store.tables import HistoryRow

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


@dataclass
class Marks:
    """What to notice while the chain is recomputed, in the same single pass.

    ``since``: a hash an auditor kept; ``since_seq`` becomes the seq of the (verified) entry
    that has it. ``seq``: an entry number (a checkpoint's); ``hash_at_seq`` becomes that
    verified entry's hash. Nothing is noticed past the first bad entry.
    """

    since: str | None = None
    seq: int | None = None
    since_seq: int | None = field(default=None, init=False)
    hash_at_seq: str | None = field(default=None, init=False)

    def notice(self, seq: int, digest: str) -> None:
        """Called for every entry that verified, in ``seq`` order."""
        if self.since is not None and digest == self.since and self.since_seq is None:
            self.since_seq = seq
        if seq == self.seq:
            self.hash_at_seq = digest


def verify_entries(
    entries: Iterable[Mapping[str, Any]], head: str | None = None, marks: Marks | None = None
) -> Verification:
    """Recompute a chain of printed entries in ``seq`` order; name the first bad one.

    Constant memory: each entry is checked against the previous hash only.
    """
    bodies = (
        (e["seq"], e["prev_hash"], {k: v for k, v in e.items() if k != "hash"}, e["hash"])
        for e in entries
    )
    return _check(bodies, head, marks)


_CHAIN = (
    "SELECT seq, cycle_id, agreement, kind, event, from_state, to_state, actor, at, "
    "recorded_at, data, prev_hash, hash FROM history ORDER BY seq"
)


def verify(conn: Connection, head: str | None = None, marks: Marks | None = None) -> Verification:
    """Recompute the whole stored chain, streaming rows in ``seq`` order (``yield_per``: a
    server-side cursor on PostgreSQL, so memory stays constant however long the chain)."""
    rows = conn.execution_options(yield_per=5000).exec_driver_sql(_CHAIN)
    return _check(_stored_bodies(rows), head, marks)


Body = tuple[int, str, dict[str, Any], str]  # seq, prev_hash, the entry minus hash, hash


def _stored_bodies(rows: Iterable[Sequence[Any]]) -> Iterator[Body]:
    """Stored rows as the printed entries minus ``hash`` (as ``printed`` builds them, without
    a mapping per row: this loop runs once per entry of the chain)."""
    loads, moment = json.loads, dt.datetime.fromtimestamp  # format_instant, inlined
    for (
        seq,
        cycle,
        agreement,
        kind,
        event,
        before,
        after,
        actor,
        at,
        recorded,
        data,
        back,
        digest,
    ) in rows:
        body = {
            "seq": seq,
            "cycle": cycle,
            "agreement": agreement,
            "kind": kind,
            "event": event,
            "from": before,
            "to": after,
            "actor": actor,
            "at": moment(at, BANGKOK).isoformat(timespec="seconds"),
            "recorded_at": moment(recorded, BANGKOK).isoformat(timespec="seconds"),
            "data": loads(data),
            "prev_hash": back,
        }
        yield seq, back, body, digest


def _check(bodies: Iterable[Body], head: str | None, marks: Marks | None) -> Verification:
    """The chain rule over (seq, prev_hash, body, hash) in order; the first bad entry."""
    prev, expected_seq, count = GENESIS, 1, 0
    dumps, sha256 = json.dumps, hashlib.sha256
    for seq, back, body, digest in bodies:
        if seq != expected_seq:
            reason = f"entry {expected_seq} is missing (next is {seq})"
            return Verification(False, count, prev, expected_seq, reason)
        if back != prev:
            return Verification(False, count, prev, seq, f"entry {seq}: prev_hash does not match")
        payload = dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if sha256(f"{prev}\n{payload}".encode()).hexdigest() != digest:
            return Verification(False, count, prev, seq, f"entry {seq}: content was altered")
        prev, expected_seq, count = digest, expected_seq + 1, count + 1
        if marks is not None:
            marks.notice(seq, prev)
    if head is not None and head != prev:
        reason = f"the chain ends at {prev}, not at the given head {head}"
        return Verification(False, count, prev, expected_seq, reason)
    return Verification(True, count, prev)


def entry_count(conn: Connection) -> int:
    """How many entries the chain holds."""
    return int(conn.execute(select(func.count()).select_from(HISTORY)).scalar_one())


def require_valid(verification: Verification) -> None:
    """Raise ``IntegrityFailure`` (exit 6) unless the chain verified."""
    if not verification.ok:
        raise IntegrityFailure(
            f"history chain broken at seq {verification.first_bad}: {verification.reason}"
        )
