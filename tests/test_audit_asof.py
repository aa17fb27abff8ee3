"""An auditor's test: "what did OPDC know on 1 May 2011?" from the history output alone.

The bundled demo year is simulated into a kept database. The compliance matrix (agreement ×
deliverable → status) as of 2011-05-01 is then rebuilt twice, by two routes that share nothing
but the cycle file's due dates:

- route A: ``history --as-of 2011-05-01 --json`` alone (event and ``missed`` timer entries),
  after re-checking its hash chain by hand exactly as CONTRACT.md defines it;
- route B: the scenario file itself (minus the lines ``simulate`` reported as refused) and the
  contract's rules: arrival before the end of the due day is ``met``, after it ``late``; a
  deadline passed unmet is ``missed``.

Route A is also checked against the engine's own ``milestones`` table at the end of the year.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CYCLE_2554, ROOT, Cli
from workflow.rules.timeutil import BANGKOK, parse_instant
from workflow.store.database import Database
from workflow.store.history import NewEntry, append, append_alike
from workflow.store.views import history_rows

SCENARIO = ROOT / "scenarios" / "demo_2554.jsonl"
AS_OF = "2011-05-01"
Matrix = dict[tuple[str, str], tuple[str, int | None]]


def deadline(due: str) -> int:
    """00:00 Asia/Bangkok of the day after ``due``: on time means before it."""
    day = dt.date.fromisoformat(due) + dt.timedelta(days=1)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=BANGKOK).timestamp())


def instant(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


def parties(doc: dict[str, Any]) -> dict[str, str]:
    """Agreement id → kind, from the cycle file."""
    found = {group["id"]: "group" for group in doc["groups"]}
    found.update({org["id"]: org["kind"] for org in doc["organisations"]})
    return found


def deliverables(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        m
        for m in doc["milestones"]
        if m["kind"] == "deliverable" and kind in m.get("applies_to", [kind])
    ]


def judge(milestone: dict[str, Any], arrived: int | None, missed: bool) -> tuple[str, int | None]:
    """A deliverable's status from its arrival (if any) and whether its deadline passed."""
    if arrived is not None:
        late = "due" in milestone and arrived >= deadline(milestone["due"])
        return ("late" if late else "met", arrived)
    return ("missed" if missed else "pending", None)


def check_chain(entries: list[dict[str, Any]]) -> None:
    """CONTRACT.md's hash chain, recomputed from the printed entries alone."""
    prev = "0" * 64
    for number, entry in enumerate(entries, start=1):
        assert entry["seq"] == number and entry["prev_hash"] == prev
        body = {key: value for key, value in entry.items() if key != "hash"}
        payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        prev = hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest()
        assert entry["hash"] == prev, number


def from_history(doc: dict[str, Any], entries: list[dict[str, Any]]) -> Matrix:
    """Route A: the matrix from history entries only."""
    arrived: dict[tuple[str, str], int] = {}
    waived: set[tuple[str, str]] = set()
    missed: set[tuple[str, str]] = set()
    by_event = {m["event"]: m["id"] for m in doc["milestones"] if m["kind"] == "deliverable"}
    for entry in entries:
        who = entry["agreement"]
        if entry["kind"] == "event" and entry["event"] == "waive":
            waived.add((who, entry["data"]["milestone"]))
        elif entry["kind"] == "event" and entry["event"] in by_event:
            arrived.setdefault((who, by_event[entry["event"]]), instant(entry["at"]))
        elif entry["kind"] == "timer" and entry["event"] == "missed":
            missed.add((who, entry["data"]["milestone"]))
    matrix: Matrix = {}
    for party, kind in parties(doc).items():
        for milestone in deliverables(doc, kind):
            key = (party, milestone["id"])
            matrix[key] = (
                ("waived", None)
                if key in waived
                else judge(milestone, arrived.get(key), key in missed)
            )
    return matrix


def from_scenario(doc: dict[str, Any], refused: set[int], as_of: int) -> Matrix:
    """Route B: the matrix from the scenario's accepted actions and the due dates."""
    arrived: dict[tuple[str, str], int] = {}
    by_event = {m["event"]: m["id"] for m in doc["milestones"] if m["kind"] == "deliverable"}
    lines = SCENARIO.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or number in refused:
            continue
        action = json.loads(line)
        at = parse_instant(action["at"])
        assert action["event"] != "waive"  # route B would need to know about waivers
        if at <= as_of and action["event"] in by_event:
            arrived.setdefault((action["agreement"], by_event[action["event"]]), at)
    matrix: Matrix = {}
    for party, kind in parties(doc).items():
        for milestone in deliverables(doc, kind):
            key = (party, milestone["id"])
            passed = "due" in milestone and deadline(milestone["due"]) <= as_of
            matrix[key] = judge(milestone, arrived.get(key), passed)
    return matrix


def test_the_matrix_as_of_a_date_from_history_alone(sqlite_cli: Cli, tmp_path: Path) -> None:
    cli = sqlite_cli
    doc = tomllib.loads(CYCLE_2554.read_text(encoding="utf-8"))
    run = cli(
        "simulate", str(CYCLE_2554), "--scenario", str(SCENARIO), "--keep-db", cli.db_url,
        "--no-send",
    )  # fmt: skip
    assert run.code == 0, run.err
    refused = {int(n) for n in re.findall(r"^refused: line (\d+):", run.err, re.MULTILINE)}
    assert len(refused) == 1  # the demo has one change request after the cutoff

    everything = cli("history", "--json").json()
    known = cli("history", "--as-of", AS_OF, "--json").json()
    as_of = parse_instant(AS_OF)
    # --as-of keeps exactly the entries recorded by then: a prefix of the chain that an
    # auditor can verify offline, ending with the deadline sweep of sar6 at 00:00.
    assert known == [e for e in everything if instant(e["recorded_at"]) <= as_of]
    assert 0 < len(known) < len(everything)
    assert known == everything[: len(known)]
    check_chain(known)
    assert known[-1]["kind"] == "timer" and known[-1]["at"] == "2011-05-01T00:00:00+07:00"
    # Under simulate, recorded_at is the virtual clock: the effective time of each item.
    assert all(e["recorded_at"] == e["at"] for e in everything if e["kind"] != "config")

    matrix = from_history(doc, known)
    expected = from_scenario(doc, refused, as_of)
    assert matrix == expected
    statuses = Counter(status for status, _ in matrix.values())
    assert {"met", "late", "missed", "pending"} <= set(statuses), statuses
    assert matrix[("TH-50", "sar6")][0] in ("met", "missed")  # judged by 1 May, not pending

    # The same derivation over the whole history gives the engine's final milestone table.
    final = from_history(doc, everything)
    table = {
        (row["agreement"], row["milestone"]): (
            row["status"],
            instant(row["met_at"]) if row["met_at"] else None,
        )
        for row in cli("milestones", "--json").json()
        if row["kind"] == "deliverable"
    }
    assert final == table
    assert final != matrix


ODD_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)  # quotes, controls, Thai, …
ODD_DATA = st.dictionaries(
    ODD_TEXT, st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), ODD_TEXT)
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(st.tuples(ODD_TEXT, st.one_of(st.none(), ODD_TEXT)), min_size=1, max_size=4),
    data=ODD_DATA,
    at=st.integers(min_value=0, max_value=4_102_444_800),
)
def test_any_text_in_an_entry_hashes_as_the_contract_says(
    sqlite_url: str, names: list[tuple[str, str | None]], data: dict[str, Any], at: int
) -> None:
    """However odd the text, the printed chain re-checks by CONTRACT.md's formula."""
    db = Database(sqlite_url)
    db.create_schema()
    with db.write() as conn:
        start = len(history_rows(conn, None, None, None))
        entries = [
            NewEntry("2554", agreement, "event", event, None, agreement, event, at, at + 1, data)
            for event, agreement in names
        ]
        append(conn, entries)
        model = NewEntry("2554", None, "timer", "missed", None, None, "system", at, at, data)
        append_alike(conn, model, [(event, agreement or "") for event, agreement in names])
        printed = history_rows(conn, None, None, None)
    db.dispose()
    assert len(printed) == start + 2 * len(names)
    check_chain(printed)
    assert [entry["data"] for entry in printed[start:]] == [json.loads(json.dumps(data))] * (
        2 * len(names)
    )
