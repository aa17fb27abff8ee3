"""``history`` on a ``Reader``: the entries as ``history --json`` prints them, streamed.

Plain SQL over the ``workflow.store.read_views.Reader`` protocol, so the CLI reads it on the
bare driver (no SQLAlchemy to import) and the web, the API and the evidence packs through
their SQLAlchemy connection; both print the same entries because both run this. One
agreement's entries come by the ``(cycle_id, agreement)`` index; ``--as-of`` keeps what was
recorded by then. Rows are fetched in batches and written as they come: constant memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from workflow.rules.timeutil import BANGKOK
from workflow.store.read_views import Reader, cycle_id, list_agreements

COLUMNS = (
    "seq, cycle_id, agreement, kind, event, from_state, to_state, actor, at, recorded_at, "
    "data, prev_hash, hash"
)


def printed_entry(row: Sequence[Any]) -> dict[str, Any]:
    """A history row (``COLUMNS``, in order) as ``history --json`` prints it."""
    moment = datetime.fromtimestamp
    seq, cycle, agreement, kind, event, before, after, actor, at, recorded, data, back, digest = row
    # format_instant, inlined: this runs once per entry of a whole-chain export or verify.
    return {
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
        "data": json.loads(data),
        "prev_hash": back,
        "hash": digest,
    }


def history_entries(
    reader: Reader, cycle: str | None, agreement: str | None, as_of: int | None
) -> Iterator[dict[str, Any]]:
    """Entries in ``seq`` order: every cycle's (or ``cycle``'s), or one agreement's of
    ``cycle`` (default: the latest), optionally only those recorded by ``as_of``.

    Bad input (an unknown cycle or agreement, exit 2) is refused when this is called, before
    the first entry is asked for, so nothing is printed then.
    """
    where: list[str] = []
    params: dict[str, Any] = {}
    if agreement is not None:
        found = cycle_id(reader, cycle)
        list_agreements(reader, found, [agreement])  # unknown agreement → exit 2
        where.append("cycle_id = :cycle AND agreement = :agreement")
        params.update(cycle=found, agreement=agreement)
    elif cycle is not None:  # as given: an unknown cycle simply has no entries
        where.append("cycle_id = :cycle")
        params["cycle"] = cycle
    if as_of is not None:
        where.append("recorded_at <= :as_of")
        params["as_of"] = as_of
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = reader.stream(f"SELECT {COLUMNS} FROM history{clause} ORDER BY seq", params)
    return (printed_entry(row) for row in rows)
