"""The store contract (issue 10 item 3): the same tests on SQLite and PostgreSQL (``db_url``).

The store-level functions are called directly, not through the CLI. Concurrent writers are
threads, each with a ``Database`` (an engine, so connections) of its own, released together by
a barrier, as separate processes would be:

- the outbox: ``enqueue`` exactly once per key; ``skip_pending`` only the pending rows of the
  named cycle, milestone, notices and agreement;
- outbox leases: concurrent ``claim``s never share a row; a leased row stays invisible to other
  claims until its lease expires or is released; ``release_stale_leases`` frees expired leases
  and those of dead processes on this host, never a live lease of another host; ``renew``
  extends only the rows its holder still holds;
- timer claims: the ``timers_done`` insert of ``tick._claim`` wins for one writer only, and a
  claim rolled back leaves the instant free;
- the history chain: concurrent ``lock_chain`` + ``append`` writers make a gap-free, verifying
  chain, whatever the agreements;
- ``fire``'s one-statement read (``repository.read_for_fire``) agrees with the table rows, and a
  fire whose version went stale writes nothing and raises ``ConcurrentChange`` (exit 5).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, func, select, text, update

from notifications.keys import message_id, outbox_key
from tests.conftest import CYCLE_2554, kpi_set
from workflow import defaults, engine
from workflow.clock import VirtualClock
from workflow.config.validate import read_cycle_file
from workflow.engine import FireRequest, fire
from workflow.errors import ConcurrentChange
from workflow.history import HISTORY, NewEntry, append, chain_tip, printed, verify
from workflow.loading import load_cycle
from workflow.mail.leases import claim, host_id, release_stale_leases, renew, worker_id
from workflow.mail.outbox import OUTBOX, Notification, enqueue, skip_pending
from workflow.repository import (
    AGREEMENTS,
    STATUSES,
    Agreement,
    Status,
    get_agreement,
    read_for_fire,
)
from workflow.store import Database
from workflow.tick import TIMERS, _claim, instants, tick
from workflow.timeutil import parse_instant

CYCLE = read_cycle_file(CYCLE_2554)
CYCLE_ID = CYCLE.id
SEND_AT = parse_instant("2011-04-16T09:00")  # the sar6 14-day reminders
GENEROUS = 120.0  # seconds: how long a thread may take on a loaded machine before we give up
OTHER_HOST = "elsewhere.example:4242:1.cafe"  # a worker id of a dispatcher on another host
T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """An empty database at the newest schema."""
    database = Database(db_url)
    database.create_schema()
    yield database
    database.dispose()


@pytest.fixture
def loaded_db(db: Database) -> Database:
    """cycle_2554 loaded (an agreement per province, all ``drafted``)."""
    outcome = load_cycle(db, VirtualClock(parse_instant("2010-09-01")), CYCLE, "store-contract")
    assert outcome.action == "created"
    return db


def together(
    url: str, count: int, work: Callable[[int, Database, threading.Barrier], T]
) -> list[T]:
    """Run ``work(i, db, barrier)`` in ``count`` threads, each with a ``Database`` of its own;
    the barrier lets them start each round together. Their results in order; the first error
    any thread raised is raised here."""
    barrier = threading.Barrier(count, timeout=GENEROUS)
    results: dict[int, T] = {}
    errors: list[BaseException] = []
    databases = [Database(url) for _ in range(count)]

    def run(index: int) -> None:
        try:
            results[index] = work(index, databases[index], barrier)
        except BaseException as exc:  # reported in the test's thread below
            errors.append(exc)
            barrier.abort()  # the others must not wait for this one forever

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + GENEROUS
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running after {GENEROUS} s: {stuck}"
    for database in databases:
        database.dispose()
    # A thread's own failure, rather than the broken barrier it left the others.
    errors.sort(key=lambda exc: isinstance(exc, threading.BrokenBarrierError))
    if errors:
        raise errors[0]
    return [results[i] for i in range(count)]


def notice(
    agreement: str | None,
    milestone: str,
    kind: str,
    offset: int = 0,
    *,
    cycle: str = CYCLE_ID,
    subject: str = "subject",
    send_at: int = SEND_AT,
) -> Notification:
    """A notification as the tick or a fire would enqueue it."""
    return Notification(
        key=outbox_key(cycle, agreement, milestone, "2011-04-30", kind, offset),
        cycle=cycle,
        agreement=agreement,
        milestone=milestone,
        kind=kind,
        notice=kind if kind in ("reminder", "overdue", "escalation") else None,
        recipient=f"{agreement or 'opdc'}@example.org",
        recipient_kind="province",
        subject=subject,
        send_at=send_at,
        status="pending",
        context={"n": offset},
    )


def enqueue_all(db: Database, notifications: Sequence[Notification]) -> list[str]:
    """Enqueue (one transaction); their keys."""
    with db.write() as conn:
        for item in notifications:
            assert enqueue(conn, item, SEND_AT)
    return [item.key for item in notifications]


def outbox(db: Database) -> dict[str, dict[str, Any]]:
    """Every outbox row by key."""
    with db.read() as conn:
        return {row.key: dict(row._mapping) for row in conn.execute(select(OUTBOX))}


def claim_in(db: Database, worker: str, batch: int = 100, now: int = SEND_AT) -> list[str]:
    """One dispatcher's claim transaction; the keys it got."""
    with db.write() as conn:
        return [row["key"] for row in claim(conn, db, now, worker, batch)]


def set_rows(db: Database, keys: Sequence[str], **values: Any) -> None:
    """Change outbox rows behind the store's back (time passing, a recorded outcome)."""
    with db.write() as conn:
        conn.execute(update(OUTBOX).where(OUTBOX.c.key.in_(list(keys))).values(**values))


def dead_pid() -> int:
    """The pid of a process of ours that has ended (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait(timeout=GENEROUS)
    return child.pid


# --------------------------------------------------------------------------- 1. the outbox


def test_enqueue_is_exactly_once_per_key(db: Database) -> None:
    """Catches: a lost UNIQUE key or ON CONFLICT clause (a second row, or an error instead of
    False), a conflicting enqueue overwriting the first row, rowcount misread as True."""
    first = notice("TH-50", "sar6", "reminder", 14)
    again = notice("TH-50", "sar6", "reminder", 14, subject="changed", send_at=SEND_AT + 60)
    other = notice("TH-50", "sar6", "reminder", 7)
    with db.write() as conn:
        assert enqueue(conn, first, SEND_AT) is True
        assert enqueue(conn, again, SEND_AT) is False  # same transaction
    with db.write() as conn:
        assert enqueue(conn, again, SEND_AT) is False  # a later transaction
        assert enqueue(conn, other, SEND_AT) is True
    rows = outbox(db)
    assert sorted(rows) == sorted([first.key, other.key])
    row = rows[first.key]
    assert (row["subject"], row["send_at"], row["status"]) == ("subject", SEND_AT, "pending")
    assert row["message_id"] == message_id(first.key)


def test_concurrent_enqueues_of_one_key_make_one_row(db: Database) -> None:
    """Catches: a check-then-insert enqueue (both writers see no row, both insert or one
    fails with a unique violation instead of returning False)."""
    item = notice(None, "sar6", "digest-reminder", 14)

    def work(index: int, mine: Database, barrier: threading.Barrier) -> bool:
        barrier.wait()
        with mine.write() as conn:
            return enqueue(conn, item, SEND_AT + index)

    won = together(db.url, 4, work)
    assert sorted(won) == [False, False, False, True]
    assert list(outbox(db)) == [item.key]


def test_skip_pending_touches_only_pending_rows_of_its_scope(db: Database) -> None:
    """Catches: a skip that ignores the agreement, milestone, cycle or notice filter, or that
    rewrites rows already sent or failed (a sent letter must never read ``skipped``)."""
    rows = [
        notice("TH-50", "sar6", "reminder", 14),  # 0 in scope
        notice("TH-50", "sar6", "reminder", 7),  # 1 in scope
        notice("TH-50", "sar6", "reminder", 1),  # 2 in scope but already sent
        notice("TH-50", "sar6", "overdue", 1),  # 3 in scope
        notice("TH-50", "sar6", "escalation", 7),  # 4 another notice
        notice("TH-50", "sar6", "receipt"),  # 5 not a notice at all
        notice("TH-50", "esar9", "reminder", 14),  # 6 another milestone
        notice("TH-51", "sar6", "reminder", 14),  # 7 another agreement
        notice("TH-51", "sar6", "escalation", 7),  # 8 another agreement
        notice("TH-50", "sar6", "reminder", 14, cycle="2555"),  # 9 another cycle
        notice("TH-51", "sar6", "escalation", 7, cycle="2555"),  # 10 another cycle
        notice("TH-52", "sar6", "escalation", 7),  # 11 failed already
    ]
    keys = enqueue_all(db, rows)
    set_rows(db, [keys[2]], status="sent")
    set_rows(db, [keys[11]], status="failed")
    before = {key: row["status"] for key, row in outbox(db).items()}

    with db.write() as conn:
        skipped = skip_pending(conn, CYCLE_ID, "sar6", ("reminder", "overdue"), "TH-50")
    assert skipped == 3
    after = {key: row["status"] for key, row in outbox(db).items()}
    changed = {key for key in keys if after[key] != before[key]}
    assert changed == {keys[0], keys[1], keys[3]}
    assert {after[key] for key in changed} == {"skipped"}

    with db.write() as conn:  # every agreement of the milestone, in this cycle only
        skipped = skip_pending(conn, CYCLE_ID, "sar6", ("escalation",), None)
    assert skipped == 2
    final = {key: row["status"] for key, row in outbox(db).items()}
    changed = {key for key in keys if final[key] != after[key]}
    assert changed == {keys[4], keys[8]}
    assert (final[keys[2]], final[keys[11]], final[keys[10]]) == ("sent", "failed", "pending")


# --------------------------------------------------------------------------- 2. claims, leases


def test_concurrent_claims_never_share_a_row(db: Database) -> None:
    """Catches: a claim that reads then leases without the writer lock (SQLite) or without
    ``FOR UPDATE SKIP LOCKED`` (PostgreSQL): two dispatchers would send the same letter."""
    keys = enqueue_all(db, [notice(f"TH-{n}", "sar6", "reminder", 14) for n in range(10, 46)])
    workers = [f"{host_id()}:{n}:0.store" for n in range(4)]

    def work(index: int, mine: Database, barrier: threading.Barrier) -> list[str]:
        got: list[str] = []
        for _ in range(5):  # 36 rows, 4 × 3 a round: 3 rounds empty the queue, 2 find nothing
            barrier.wait()
            got += claim_in(mine, workers[index], batch=3)
        return got

    claimed = together(db.url, 4, work)
    everything = [key for got in claimed for key in got]
    assert sorted(everything) == sorted(keys), "a row claimed twice, or not at all"
    rows = outbox(db)
    for worker, got in zip(workers, claimed, strict=True):
        assert all(rows[key]["leased_by"] == worker for key in got)
    assert all(rows[key]["lease_until"] is not None for key in keys)


def test_a_leased_row_is_invisible_until_expired_or_released(db: Database) -> None:
    """Catches: a claim that ignores live leases; ``release_stale_leases`` that frees a live
    lease of another host or of a live process here (a letter sent twice), or that leaves an
    expired or dead process's lease held (a letter stranded)."""
    first, second, third = enqueue_all(
        db, [notice(org, "sar6", "reminder", 14) for org in ("TH-50", "TH-51", "TH-52")]
    )
    here = worker_id()  # this (live) process
    start = int(time.time())
    assert sorted(claim_in(db, here)) == sorted([first, second, third])
    assert claim_in(db, OTHER_HOST) == []  # all leased: nothing for another dispatcher
    # Every lease runs to at least start + LEASE_SECONDS: judged at ``start`` all are live.
    assert release_stale_leases(db, start) == 0
    assert claim_in(db, OTHER_HOST) == []

    # Time passes for one row: its lease expired; any dispatcher frees it and claims it.
    set_rows(db, [first], lease_until=start - 1)
    assert release_stale_leases(db, start) == 1
    assert outbox(db)[first]["lease_until"] is None
    assert claim_in(db, OTHER_HOST) == [first]

    # ``own``: this process's leases (a dispatch that did not finish); not the other host's.
    assert release_stale_leases(db, start, own=True) == 2
    rows = outbox(db)
    assert (rows[second]["lease_until"], rows[third]["lease_until"]) == (None, None)
    assert rows[first]["leased_by"] == OTHER_HOST
    assert rows[first]["lease_until"] >= start + defaults.LEASE_SECONDS
    assert sorted(claim_in(db, f"{host_id()}:1:0.third")) == sorted([second, third])

    # A dead process on this host: freed at once, though its lease has not expired.
    dead = f"{host_id()}:{dead_pid()}:0.dead"
    set_rows(db, [second], leased_by=dead)
    assert release_stale_leases(db, start) == 1
    rows = outbox(db)
    assert rows[second]["lease_until"] is None
    assert rows[first]["leased_by"] == OTHER_HOST and rows[first]["lease_until"] is not None
    assert rows[third]["lease_until"] is not None  # a live lease of a (pretend) live pid 1


def test_a_row_not_yet_due_is_not_claimed(db: Database) -> None:
    """Catches: a claim that ignores ``next_attempt_at`` (a retry sent before its backoff)."""
    (key,) = enqueue_all(db, [notice("TH-50", "sar6", "reminder", 14)])
    assert claim_in(db, OTHER_HOST, now=SEND_AT - 1) == []
    assert claim_in(db, OTHER_HOST, now=SEND_AT) == [key]


def test_renewal_extends_only_the_rows_still_held(db: Database) -> None:
    """Catches: a renewal keyed on the keys alone (it would re-lease a row sent meanwhile,
    resurrect a row released for retry, or steal a row another dispatcher took over)."""
    keys = enqueue_all(
        db, [notice(org, "sar6", "reminder", 14) for org in ("TH-50", "TH-51", "TH-52", "TH-53")]
    )
    held, retrying, sent, taken = keys
    mine = f"{host_id()}:1:0.mine"
    start = int(time.time())
    assert sorted(claim_in(db, mine, batch=3)) == sorted([held, retrying, sent])
    assert claim_in(db, OTHER_HOST) == [taken]
    set_rows(db, [retrying], lease_until=None, next_attempt_at=SEND_AT + 600)  # as dispatch does
    set_rows(db, [sent], status="sent", lease_until=None)
    before = outbox(db)

    later = start + 1000
    assert renew(db, mine, keys, wall=later) == 1
    after = outbox(db)
    assert after[held]["lease_until"] == later + defaults.LEASE_SECONDS
    assert after[held]["leased_by"] == mine
    for key in (retrying, sent, taken):
        assert after[key] == before[key], key
    assert renew(db, mine, [], wall=later) == 0
    assert renew(db, "someone-else", keys, wall=later) == 0


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
                won.append(_claim(conn, CYCLE_ID, instant, wall + index))
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
        assert _claim(conn, CYCLE_ID, instant, 1)
        raise Died
    with db.write() as conn:
        assert _claim(conn, CYCLE_ID, instant, 2)
    with db.write() as conn:
        assert not _claim(conn, CYCLE_ID, instant, 3)
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
