"""The store contract (issue 10 item 3), the history part: the same tests on SQLite and
PostgreSQL (``db_url``; the ``db`` and ``loaded_db`` fixtures are in ``tests/conftest.py``).

The store-level functions are called directly, not through the CLI. Concurrent writers are
threads, each with a ``Database`` (an engine, so connections) of its own, released together by
a barrier, as separate processes would be (``tests.support.store.together``):

- timer claims: the ``timers_done`` insert of ``tick.claim_instant`` wins for one writer only, and a
  claim rolled back leaves the instant free;
- the history chain: concurrent ``lock_chain`` + ``append`` writers make a gap-free, verifying
  chain, whatever the agreements;
- ``fire``'s one-statement read (``repository.read_for_fire``) agrees with the table rows, and a
  fire whose version went stale writes nothing and raises ``ConcurrentChange`` (exit 5).

The outbox and its leases: ``tests/test_store_contract_outbox.py``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import Connection, func, select, text

from tests.conftest import kpi_set
from tests.support.store import (
    CYCLE,
    CYCLE_ID,
    SEND_AT,
    outbox,
    together,
)
from workflow.rules.clock import VirtualClock
from workflow.rules.errors import ConcurrentChange
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.history import HISTORY, NewEntry, append, chain_tip, printed, verify
from workflow.store.repository import (
    AGREEMENTS,
    STATUSES,
    Agreement,
    Status,
    get_agreement,
    read_for_fire,
)
from workflow.usecases import fire as engine
from workflow.usecases.fire import FireRequest, fire
from workflow.usecases.tick import TIMERS, claim_instant, instants, tick

# --------------------------------------------------------------------------- 3. timer claims


def test_a_timer_instant_is_claimed_by_one_writer_only(loaded_db: Database) -> None:
    """Catches: ``timers_done`` without its (cycle, key) primary key or a claim that is not
    INSERT … ON CONFLICT DO NOTHING (an instant processed twice: double notices, two "missed"
    entries per agreement, or a writer failing instead of stepping aside)."""
    db = loaded_db
    chosen = instants(CYCLE)[:6]
    assert len({instant.key for instant in chosen}) == 6
    wall = int(time.time())

    def work(index: int, mine: Database, barrier: threading.Barrier) -> list[bool]:
        won: list[bool] = []
        for instant in chosen:
            barrier.wait()
            with mine.write() as conn:
                won.append(claim_instant(conn, CYCLE_ID, instant, wall + index))
                time.sleep(0.02)  # the claim stays uncommitted a moment: the others contend
        return won

    outcomes = together(db.url, 4, work)
    for position, instant in enumerate(chosen):
        winners = [index for index, won in enumerate(outcomes) if won[position]]
        assert len(winners) == 1, (instant.key, winners)
    with db.read() as conn:
        rows = conn.execute(select(TIMERS.c.key, TIMERS.c.at).where(TIMERS.c.cycle_id == CYCLE_ID))
        stored = sorted((row.key, row.at) for row in rows)
    assert stored == sorted((instant.key, instant.at) for instant in chosen)


def test_a_rolled_back_timer_claim_leaves_the_instant_free(loaded_db: Database) -> None:
    """Catches: a claim committed apart from the instant's work (a tick that died half-way
    would leave the instant marked done and its work never done)."""
    db = loaded_db
    instant = instants(CYCLE)[0]

    class Died(Exception):
        pass

    with pytest.raises(Died), db.write() as conn:
        assert claim_instant(conn, CYCLE_ID, instant, 1)
        raise Died
    with db.write() as conn:
        assert claim_instant(conn, CYCLE_ID, instant, 2)
    with db.write() as conn:
        assert not claim_instant(conn, CYCLE_ID, instant, 3)
    with db.read() as conn:
        rows = conn.execute(select(TIMERS.c.processed_at)).all()
    assert [row.processed_at for row in rows] == [2]


# --------------------------------------------------------------------------- 4. the history chain


def entry(writer: int, n: int) -> NewEntry:
    """Writer ``writer``'s ``n``th entry, on an agreement of its own."""
    return NewEntry(
        cycle=CYCLE_ID,
        agreement=f"TH-{50 + writer}",
        kind="event",
        event="store_contract",
        from_state="drafted",
        to_state="drafted",
        actor=f"writer:{writer}",
        at=SEND_AT + n,
        recorded_at=SEND_AT + n,
        data={"writer": writer, "n": n, "text": "ลำดับ"},
    )


def test_concurrent_history_appends_make_one_gap_free_chain(db: Database) -> None:
    """Catches: appends without the chain lock, or a lock taken after the tip is read (two
    entries with one ``seq``: a primary-key failure for an innocent writer, or a fork of the
    chain), and a tip read outside the writer's transaction (``prev_hash`` of a stale tip)."""
    writers, each = 4, 25

    def work(index: int, mine: Database, barrier: threading.Barrier) -> list[int]:
        seqs: list[int] = []
        barrier.wait()
        for n in range(each):
            with mine.write() as conn:
                mine.lock_chain(conn)
                seqs += append(conn, [entry(index, n)])
        return seqs

    returned = together(db.url, writers, work)
    total = writers * each
    assert sorted(seq for seqs in returned for seq in seqs) == list(range(1, total + 1))
    with db.read() as conn:
        result = verify(conn)
        assert result.ok, result.reason
        assert result.entries == total
        assert chain_tip(conn) == (total, result.head)
        rows = [printed(row._mapping) for row in conn.execute(select(HISTORY).order_by("seq"))]
    assert [row["seq"] for row in rows] == list(range(1, total + 1))
    for index, seqs in enumerate(returned):
        # Each writer's entries are where append said, in its own order, on its agreement.
        assert seqs == sorted(seqs)
        for n, seq in enumerate(seqs):
            row = rows[seq - 1]
            assert row["data"] == {"writer": index, "n": n, "text": "ลำดับ"}
            assert row["agreement"] == f"TH-{50 + index}"


# --------------------------------------------------------------------------- 5. the fire read


def act(
    db: Database,
    clock: VirtualClock,
    org: str,
    event: str,
    at: str,
    role: str = "",
    data: dict[str, Any] | None = None,
) -> Agreement:
    """Fire ``event`` at ``at``, entered on time (the clock shows ``at``)."""
    clock.set(parse_instant(at))
    if event == "propose_kpis":
        data = kpi_set()
    return fire(db, clock, FireRequest(org, event, role or f"province:{org}", None, data))


def signed(db: Database, clock: VirtualClock, org: str) -> None:
    act(db, clock, org, "propose_kpis", "2010-09-10")
    act(db, clock, org, "agree", "2010-09-20", role="committee")
    act(db, clock, org, "sign", "2010-11-15", role="admin")


def table_rows(conn: Connection, org: str) -> tuple[dict[str, Any], dict[str, Status]]:
    """The agreement's row and its milestone statuses, straight from the tables."""
    row = conn.execute(
        select(AGREEMENTS).where(AGREEMENTS.c.cycle_id == CYCLE_ID, AGREEMENTS.c.org_id == org)
    ).one()
    statuses = {
        status.milestone_id: Status(status.status, status.met_at, status.late_business_days)
        for status in conn.execute(select(STATUSES).where(STATUSES.c.agreement_pk == row.pk))
    }
    return dict(row._mapping), statuses


def every_milestone(settings: Any) -> list[str]:
    return [milestone.id for milestone in settings.milestones]


def test_the_fire_read_matches_the_tables_after_fires(loaded_db: Database) -> None:
    """Catches: a one-statement read whose UNION ALL mixes up columns or rows (another
    agreement's statuses, a stale version, a status of the wrong milestone), the named cycle
    and the latest one read differently, and a ``fire`` that returns what it did not write."""
    db = loaded_db
    clock = VirtualClock(parse_instant("2010-09-01"))
    with db.read() as conn:
        loaded_version = table_rows(conn, "TH-53")[0]["version"]
    returned: dict[str, Agreement] = {}
    returned["TH-51"] = act(db, clock, "TH-51", "propose_kpis", "2010-09-10")
    act(db, clock, "TH-50", "propose_kpis", "2010-09-10")
    clock.set(parse_instant("2010-09-14T09:00"))
    tick(db, clock, clock.now())  # the 13 Sep deadline passed: TH-52, TH-53…: missed
    act(db, clock, "TH-50", "agree", "2010-09-20", role="committee")
    act(db, clock, "TH-50", "sign", "2010-11-15", role="admin")
    returned["TH-52"] = act(db, clock, "TH-52", "propose_kpis", "2010-12-01")  # late
    url = {"url": "https://province.example/ข้อตกลง"}
    returned["TH-50"] = act(db, clock, "TH-50", "publish", "2010-12-02", data=url)

    found: dict[str, tuple[str, int, str]] = {}
    for org in ("TH-50", "TH-51", "TH-52", "TH-53"):
        with db.connect() as conn:
            cycle, agreement, current = read_for_fire(conn, None, org, every_milestone)
            named = read_for_fire(conn, CYCLE_ID, org, every_milestone)
            narrow = read_for_fire(conn, None, org, lambda settings: ["sar6", "publish"])
        with db.read() as conn:
            row, statuses = table_rows(conn, org)
            assert agreement == get_agreement(conn, CYCLE_ID, org)
        assert cycle.id == CYCLE_ID
        assert (agreement.pk, agreement.org_id, agreement.state) == (row["pk"], org, row["state"])
        assert (agreement.version, agreement.published) == (row["version"], bool(row["published"]))
        assert (agreement.kpis_json, agreement.last_event_at) == (row["kpis"], row["last_event_at"])
        assert current == statuses
        assert named[1] == agreement and named[2] == current
        assert {"sar6", "publish"} <= set(narrow[2])
        assert all(narrow[2][key] == statuses[key] for key in narrow[2])
        if org in returned:
            assert returned[org] == agreement, "fire returned something else than it wrote"
        found[org] = (agreement.state, agreement.version, current["propose_kpis"].status)

    assert found == {
        "TH-50": ("signed", loaded_version + 4, "met"),
        "TH-51": ("proposed", loaded_version + 1, "met"),
        "TH-52": ("proposed", loaded_version + 1, "late"),
        "TH-53": ("drafted", loaded_version, "missed"),
    }
    with db.connect() as conn:
        _, _, current = read_for_fire(conn, None, "TH-50", every_milestone)
    assert (current["sign"].status, current["publish"].status) == ("met", "met")
    assert current["publish"].met_at == parse_instant("2010-12-02")
    assert current["sar6"] == Status("pending", None, None)


def snapshot(db: Database) -> tuple[list[dict[str, Any]], dict[str, str], list[Any]]:
    """History entries, outbox statuses by key, and all milestone status rows."""
    with db.read() as conn:
        history = [printed(row._mapping) for row in conn.execute(select(HISTORY).order_by("seq"))]
        statuses = conn.execute(
            text(
                "SELECT agreement_pk, milestone_id, status, met_at FROM milestone_status "
                "ORDER BY agreement_pk, milestone_id"
            )
        ).all()
    return history, {key: row["status"] for key, row in outbox(db).items()}, list(statuses)


def interloping(
    monkeypatch: pytest.MonkeyPatch, url: str, clock: VirtualClock, request: FireRequest
) -> list[Agreement]:
    """Make the next ``fire`` be overtaken: right after its read, before its write
    transaction, another connection (a ``Database`` of its own) fires ``request`` to
    completion. The list receives what that fire returned."""
    done: list[Agreement] = []
    started = threading.Event()
    original = engine._test_hook

    def hook(stage: str) -> None:
        if stage == "read" and not started.is_set():
            started.set()  # first: the overtaking fire runs this hook too
            other = Database(url)
            try:
                done.append(fire(other, clock, request))
            finally:
                other.dispose()
        original(stage)

    monkeypatch.setattr(engine, "_test_hook", hook)
    return done


def test_a_fire_on_a_stale_version_writes_nothing(
    loaded_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catches: an UPDATE without the version check (a lost update: the second fire's state
    over the first's), or a ConcurrentChange raised after part of the write (a history
    entry, a met status or a receipt of the fire that lost)."""
    db = loaded_db
    clock = VirtualClock(parse_instant("2010-09-01"))
    signed(db, clock, "TH-50")
    before = snapshot(db)
    with db.read() as conn:
        version = get_agreement(conn, CYCLE_ID, "TH-50").version
    clock.set(parse_instant("2010-12-01"))
    winner = FireRequest("TH-50", "submit_kpi_template", "province:TH-50")
    won = interloping(monkeypatch, db.url, clock, winner)
    publish = FireRequest("TH-50", "publish", "province:TH-50", None, {"url": "https://x.example"})

    with pytest.raises(ConcurrentChange) as caught:
        fire(db, clock, publish)
    assert caught.value.exit_code == 5
    assert len(won) == 1 and won[0].state == "template_submitted"

    history, mail, statuses = snapshot(db)
    assert history[: len(before[0])] == before[0]
    assert [entry["event"] for entry in history[len(before[0]) :]] == ["submit_kpi_template"]
    new_mail = sorted(set(mail) - set(before[1]))
    assert len(new_mail) == 1 and "/kpi_template/" in new_mail[0], new_mail
    assert not any("/publish/" in key for key in mail)
    with db.read() as conn:
        row, current = table_rows(conn, "TH-50")
        assert verify(conn).ok
    assert (row["state"], row["version"], bool(row["published"])) == (
        "template_submitted",
        version + 1,
        False,
    )
    assert current["publish"].status == "pending" and current["kpi_template"].status == "met"
    changed = set(statuses) - set(before[2])
    assert len(changed) == 1, changed  # kpi_template met; the publish status untouched

    # Exit 5 means "try again": the retry reads the new version and succeeds.
    again = fire(db, clock, publish)
    assert (again.version, again.published, again.state) == (
        version + 2,
        True,
        "template_submitted",
    )


def test_fires_on_different_agreements_both_succeed(
    loaded_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catches: a version check (or a chain lock) wider than the agreement: a fire that
    loses to a fire on another agreement."""
    db = loaded_db
    clock = VirtualClock(parse_instant("2010-09-10"))
    other = FireRequest("TH-51", "propose_kpis", "province:TH-51", None, kpi_set())
    won = interloping(monkeypatch, db.url, clock, other)
    mine = fire(db, clock, FireRequest("TH-50", "propose_kpis", "province:TH-50", None, kpi_set()))
    assert len(won) == 1 and won[0].state == mine.state == "proposed"
    with db.read() as conn:
        history = [printed(row._mapping) for row in conn.execute(select(HISTORY).order_by("seq"))]
        assert verify(conn).ok
        count = conn.execute(select(func.count()).select_from(HISTORY)).scalar_one()
    assert count == 2
    assert [(e["agreement"], e["event"]) for e in history] == [
        ("TH-51", "propose_kpis"),
        ("TH-50", "propose_kpis"),
    ]
