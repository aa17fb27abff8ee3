"""``verify --since HASH`` (CONTRACT.md, Additions): an auditor keeps a head and later proves
that the history only grew after it, on both backends, through the real CLI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cli
from tests.support.history import first_part, raw_sql, recompute, year_goes_on
from workflow.store.chain import GENESIS, Marks, entry_hash, verify_entries


def test_since_a_kept_head_counts_what_was_added(loaded: Cli) -> None:
    kept = first_part(loaded)
    kept_seq = len(loaded("history", "--json").json())
    # Right away: the kept hash is the head, nothing added.
    same = loaded("verify", "--since", kept, "--json")
    assert same.code == 0, same.err
    assert same.json() == {
        "ok": True,
        "entries": kept_seq,
        "head": kept,
        "since_seq": kept_seq,
        "added": 0,
    }
    year_goes_on(loaded)
    entries = loaded("history", "--json").json()
    assert len(entries) > kept_seq + 2  # the tick appended timer entries too
    result = loaded("verify", "--since", kept, "--json")
    assert result.code == 0, result.err
    answer = result.json()
    assert answer["ok"] is True
    assert answer["entries"] == len(entries)
    assert answer["head"] == recompute(entries) == entries[-1]["hash"]
    assert answer["since_seq"] == kept_seq
    assert entries[kept_seq - 1]["hash"] == kept
    assert answer["added"] == len(entries) - kept_seq
    # Without --json: one readable line with the same facts; upper-case hex is the same hash.
    text = loaded("verify", "--since", kept.upper())
    assert text.code == 0, text.err
    assert f"since seq {kept_seq}: {answer['added']} entries added" in text.out
    assert text.out.startswith("ok;")
    # --since combines with --head
    assert loaded("verify", "--since", kept, "--head", entries[-1]["hash"]).code == 0
    assert loaded("verify", "--since", kept, "--head", kept).code == 6
    # The first entry's hash is a kept hash too.
    first = loaded("verify", "--since", entries[0]["hash"], "--json").json()
    assert (first["since_seq"], first["added"]) == (1, len(entries) - 1)


def test_an_altered_earlier_entry_fails_naming_its_seq(loaded: Cli) -> None:
    kept = first_part(loaded)
    year_goes_on(loaded)
    raw_sql(loaded, "UPDATE history SET actor = 'admin' WHERE seq = 2")
    result = loaded("verify", "--since", kept, "--json")
    assert result.code == 6
    assert result.json()["ok"] is False and result.json()["first_bad_seq"] == 2
    assert "seq 2" in result.err and len(result.err.strip().splitlines()) == 1
    plain = loaded("verify", "--since", kept)
    assert plain.code == 6 and "BROKEN at seq 2" in plain.out


def test_an_entry_altered_after_the_kept_one_fails_too(loaded: Cli) -> None:
    kept = first_part(loaded)
    kept_seq = len(loaded("history", "--json").json())
    year_goes_on(loaded)
    raw_sql(loaded, "UPDATE history SET actor = 'evil' WHERE seq = :seq", seq=kept_seq + 1)
    result = loaded("verify", "--since", kept, "--json")
    assert result.code == 6
    assert result.json()["first_bad_seq"] == kept_seq + 1
    assert result.json()["since_seq"] == kept_seq  # noticed before the break


@pytest.mark.parametrize("which", ["before", "kept", "last"])
def test_a_deleted_entry_fails(loaded: Cli, which: str) -> None:
    kept = first_part(loaded)
    kept_seq = len(loaded("history", "--json").json())
    year_goes_on(loaded)
    last = len(loaded("history", "--json").json())
    seq = {"before": 1, "kept": kept_seq, "last": last}[which]
    raw_sql(loaded, "DELETE FROM history WHERE seq = :seq", seq=seq)
    result = loaded("verify", "--since", kept, "--json")
    if which == "last":
        # Cutting the end leaves a valid shorter chain: --since proves the kept part is there,
        # and --head (the head kept at the later visit) catches the cut.
        assert result.code == 0 and result.json()["entries"] == last - 1
        assert loaded("verify", "--since", kept, "--head", "f" * 64).code == 6
        return
    assert result.code == 6, result.out
    assert result.json()["first_bad_seq"] == seq
    assert f"seq {seq}" in result.err


def test_an_unknown_or_malformed_hash_is_bad_usage(loaded: Cli) -> None:
    kept = first_part(loaded)
    for wrong in ("0" * 64, kept[:-1] + ("0" if kept[-1] != "0" else "1"), kept[:10], "xyz"):
        result = loaded("verify", "--since", wrong, "--json")
        assert result.code == 2, (wrong, result.out, result.err)
        assert "no history entry has hash" in result.err
        assert result.out == ""
        assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    # The genesis value is no entry's hash either, even on an empty chain.
    raw_sql(loaded, "DELETE FROM history")
    assert loaded("verify", "--json").json()["entries"] == 0
    assert loaded("verify", "--since", GENESIS).code == 2


def test_plain_verify_and_head_are_unchanged(loaded: Cli) -> None:
    kept = first_part(loaded)
    plain = loaded("verify", "--json")
    assert plain.code == 0 and set(plain.json()) == {"ok", "entries", "head"}
    assert loaded("verify", "--head", kept).code == 0
    assert loaded("verify", "--head", "0" * 64).code == 6


def _chain(length: int) -> Iterator[dict[str, Any]]:
    prev = GENESIS
    for seq in range(1, length + 1):
        entry: dict[str, Any] = {"seq": seq, "data": {"n": seq}, "prev_hash": prev}
        entry["hash"] = prev = entry_hash(prev, entry)
        yield entry


def test_verification_is_one_streaming_pass() -> None:
    """Entries are consumed one at a time and the first bad one stops the pass: nothing is
    collected, so memory does not grow with the chain (the store feeds it with yield_per)."""
    consumed = 0

    def counted(entries: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        nonlocal consumed
        for entry in entries:
            consumed += 1
            if entry["seq"] == 500:
                entry = {**entry, "data": {"n": -1}}
            yield entry

    marks = Marks(since=None, seq=10)
    result = verify_entries(counted(_chain(100_000)), marks=marks)
    assert (result.ok, result.first_bad, consumed) == (False, 500, 500)
    assert marks.hash_at_seq is not None
    whole = Marks(since=None, seq=99_999)
    assert verify_entries(_chain(100_000), marks=whole).ok
    assert whole.hash_at_seq is not None
