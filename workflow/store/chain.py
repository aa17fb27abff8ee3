"""Checking the hash chain (CONTRACT.md "History and audit"), with no database library.

``hash = sha256(prev_hash + "\\n" + json.dumps(entry, sort_keys=True, separators=(",", ":"),
ensure_ascii=False))`` where ``entry`` is the printed entry minus ``hash``; the first
``prev_hash`` is 64 zeros. ``verify_chain`` recomputes the stored chain through a ``Reader``
(the bare driver for ``rubrong verify``, a SQLAlchemy connection elsewhere), ``verify_entries``
a chain of printed entries (an evidence pack's). Each entry is re-encoded with ``json.dumps``,
independently of the writer's own encoder (``workflow.store.history``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workflow.rules.errors import IntegrityFailure
from workflow.rules.timeutil import BANGKOK
from workflow.store.read_history import COLUMNS
from workflow.store.read_views import Reader

GENESIS = "0" * 64


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """The contract's hash of one printed entry (``hash`` key excluded)."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


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


_CHAIN = f"SELECT {COLUMNS} FROM history ORDER BY seq"


def verify_chain(
    reader: Reader, head: str | None = None, marks: Marks | None = None
) -> Verification:
    """Recompute the whole stored chain, streaming rows in ``seq`` order (constant memory
    however long the chain: ``Reader.stream``)."""
    return _check(_stored_bodies(reader.stream(_CHAIN, {})), head, marks)


Body = tuple[int, str, dict[str, Any], str]  # seq, prev_hash, the entry minus hash, hash


def _stored_bodies(rows: Iterable[Sequence[Any]]) -> Iterator[Body]:
    """Stored rows as the printed entries minus ``hash``: ``read_history.printed_entry``
    spelled out without the ``hash`` key (calling it and popping the key costs verify about
    15 %, measured). Were the two to differ, every chain rubrong writes would fail to verify.
    """
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


def require_valid(verification: Verification) -> None:
    """Raise ``IntegrityFailure`` (exit 6) unless the chain verified."""
    if not verification.ok:
        raise IntegrityFailure(
            f"history chain broken at seq {verification.first_bad}: {verification.reason}"
        )
