"""``rubrong run``: the long-running service. APScheduler wakes the process; the database decides.

Nothing is kept in the scheduler. On start and after every wake the service asks the database
for the next unprocessed timer instant (``next_instant``) and the earliest pending mail retry,
and schedules ONE date job for the earliest (capped by a wall-clock poll interval, so that mail
queued by other processes, such as receipts of fired events or resends, goes out too). Each
wake runs ``tick`` then ``dispatch`` at the clock's current instant, so a service that was down
catches up once when it starts: ``tick`` processes every instant ≤ now exactly once and its
``catch_up_days`` rule decides what is sent and what is skipped. On an accelerated clock a job
waits the virtual delay divided by the speed.

Several processes may serve one PostgreSQL database (``workflow.usecases.leader``): only the leader
ticks; every process dispatches. A follower wakes at the timer instants too, waits (a few
seconds at most) for the leader to process the instant, and then sends its share of the mail;
it also wakes every ``leader_retry`` seconds to try for the leadership, so that the timers move
to another process within seconds of the leader's death. Every wake first frees the mail
leases nobody alive holds (``notifications.leases.release_stale_leases``: expired ones, a dead
local process's, and this process's own left by a dispatch that failed half-way), so letters a
killed dispatcher had claimed go out at the next wake.

With checkpoints configured (``rubrong run --checkpoint-key --checkpoint-dir``) the leader also
wakes at every Bangkok midnight and, at its first wake of each day, signs the chain's head
(``workflow.usecases.checkpoint.daily_checkpoint``): one file per day on which it ran.

Threads: one APScheduler worker runs the wakes; the main thread owns the scheduler (adds jobs,
shuts it down) and watches for signals. A job never touches the scheduler, because
``shutdown(wait=True)`` holds the job-store lock while it waits for the running job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from notifications.mailers import Mailer
from workflow.rules.clock import AcceleratedClock, SystemClock
from workflow.rules.defaults import LEADER_RETRY_SECONDS, POLL_SECONDS, RUN_BATCH
from workflow.rules.errors import RubrongError
from workflow.rules.timeutil import BANGKOK, bangkok_date, deadline_instant, format_instant
from workflow.store.database import Database
from workflow.store.leases import release_stale_leases
from workflow.store.outbox import OUTBOX
from workflow.usecases.checkpoint import daily_checkpoint, read_checkpoint
from workflow.usecases.dispatch import dispatch
from workflow.usecases.leader import Leadership, SoleLeader
from workflow.usecases.tick import next_instant, tick

ServiceClock = SystemClock | AcceleratedClock
ERROR_RETRY_SECONDS = 5.0
FOLLOWER_CHECK_SECONDS = 0.05  # how often a follower looks whether the leader has ticked


class StoppingClock(AcceleratedClock):
    """An accelerated clock that stops at ``stop`` and reads ``stop`` from then on
    (``rubrong run --clock-stop``: a demo or a test that must not run past a point)."""

    def __init__(self, start: int, speed: float, stop: int, origin: float | None = None) -> None:
        super().__init__(start, speed, origin)
        self.stop = stop

    def now(self) -> int:
        """The accelerated instant, never past ``stop``."""
        return min(super().now(), self.stop)


def wall_time(clock: ServiceClock, instant: int) -> float:
    """The wall-clock time (epoch seconds) at which ``clock`` reaches ``instant`` (infinity
    for an instant after a stopping clock's stop: never)."""
    if isinstance(clock, StoppingClock) and instant > clock.stop:
        return math.inf
    if isinstance(clock, AcceleratedClock):
        return clock.origin + (instant - clock.start) / clock.speed
    return float(instant)


@dataclass(frozen=True)
class Checkpoints:
    """Daily signed checkpoints: the private key and the directory the files go to."""

    key: Ed25519PrivateKey
    directory: Path


class JsonLog:
    """Structured log: one JSON object per line on stderr, one line per action."""

    def __init__(self, clock: ServiceClock, stream: TextIO | None = None) -> None:
        self.clock = clock
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, action: str, *, virtual_now: int | None = None, **fields: Any) -> None:
        """Write one line: ``ts`` (wall), ``virtual_now``, ``action`` and ``fields``."""
        record: dict[str, Any] = {
            "ts": dt.datetime.now(BANGKOK).isoformat(timespec="milliseconds"),
            "virtual_now": format_instant(self.clock.now() if virtual_now is None else virtual_now),
            "action": action,
            **fields,
        }
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        stream = self.stream or sys.stderr
        with self._lock:
            stream.write(line)
            stream.flush()


class JsonLogHandler(logging.Handler):
    """Routes library warnings (APScheduler, uvicorn) into the JSON log."""

    def __init__(self, log: JsonLog) -> None:
        super().__init__(logging.WARNING)
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        """One ``log`` line per record."""
        try:
            self.log("log", level=record.levelname, logger=record.name, message=record.getMessage())
        except Exception:  # a log line must never take the service down
            self.handleError(record)


class StopFlag:
    """Set by SIGTERM/SIGINT. The handler only assigns an attribute: nothing that can block."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Catch SIGTERM and SIGINT (main thread only)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum

    @property
    def name(self) -> str | None:
        """The signal's name, once one arrived."""
        return signal.Signals(self.signum).name if self.signum is not None else None


@dataclass(frozen=True)
class NextWake:
    """When to wake next: a wall time, the virtual instant it stands for (if any), and why."""

    wall: float
    instant: int | None
    reason: str  # start | instant | retry | poll | error | leader


def earliest_retry(db: Database, after: int) -> int | None:
    """The earliest ``next_attempt_at`` after ``after`` of a pending outbox row."""
    with db.read() as conn:
        value = conn.execute(
            select(func.min(OUTBOX.c.next_attempt_at)).where(
                OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at > after
            )
        ).scalar()
    return int(value) if value is not None else None


class Service:
    """The scheduler loop around ``tick`` and ``dispatch``."""

    def __init__(
        self,
        db: Database,
        clock: ServiceClock,
        mailer: Mailer,
        log: JsonLog,
        *,
        poll: float = POLL_SECONDS,
        leadership: Leadership | None = None,
        leader_retry: float = LEADER_RETRY_SECONDS,
        batch: int = RUN_BATCH,
        checkpoints: Checkpoints | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.mailer = mailer
        self.log = log
        self.poll = poll
        self.leadership: Leadership = leadership or SoleLeader()
        self.leader_retry = leader_retry
        self.batch = batch
        self.checkpoints = checkpoints
        self.wakes = 0
        self._plans = 0
        self._done = threading.Event()
        self._next: NextWake | None = None
        self._was_leading = False

    def catch_up(self, instant: int | None = None) -> int:
        """One wake's work: tick then dispatch at the clock's now (at least ``instant``)."""
        now = self.clock.now()
        if instant is not None:
            now = max(now, instant)  # the wall-to-virtual conversion may round down a second
        first = self.wakes == 0
        self.wakes += 1
        released = release_stale_leases(self.db, int(time.time()), own=True)
        if released:
            self.log("release_leases", virtual_now=now, rows=released)
        leading = self.leadership.refresh()
        if not leading and instant is not None:
            leading = self._await_leader(instant)
        became = leading and not self._was_leading
        self._was_leading = leading
        if leading:
            report = tick(self.db, self.clock, now)
            if report.instants or first or became:
                self.log(
                    "tick",
                    virtual_now=now,
                    instants=report.instants,
                    enqueued=report.enqueued,
                    missed=report.missed,
                    closed=report.closed,
                    processed=report.processed,
                )
            self._checkpoint(now)
        sent = dispatch(self.db, self.mailer, now, batch=self.batch, reclaim=False)
        if sent.sent or sent.retrying or sent.failed or first:
            self.log(
                "dispatch",
                virtual_now=now,
                sent=sent.sent,
                retrying=sent.retrying,
                failed=len(sent.failed),
                failed_keys=sent.failed[:5],
            )
        return now

    def _checkpoint(self, now: int) -> None:
        """The leader's first wake of a Bangkok day signs the head (one file per day); a
        failure is logged and tried again at the next wake, the timers go on."""
        if self.checkpoints is None:
            return
        try:
            written = daily_checkpoint(
                self.db, self.checkpoints.key, self.checkpoints.directory, now
            )
            if written is None:
                return
            signed = read_checkpoint(written)
        except (RubrongError, OSError) as exc:
            self.log("error", virtual_now=now, during="checkpoint", error=str(exc))
            return
        self.log(
            "checkpoint",
            virtual_now=now,
            file=str(written),
            seq=signed.seq,
            head=signed.head,
            recorded_at=signed.recorded_at,
        )

    def _await_leader(self, instant: int) -> bool:
        """A follower woken for ``instant``: wait until the leader has processed it, so that
        the mail it enqueued is there to share; or become the leader meanwhile (True)."""
        end = time.monotonic() + self.leader_retry
        while time.monotonic() < end:
            pending = next_instant(self.db, instant - 1)
            if pending is None or pending > instant:
                return False
            time.sleep(FOLLOWER_CHECK_SECONDS)
            if self.leadership.refresh():
                return True
        return False

    def next_wake(self, now: int) -> NextWake:
        """The earliest of: next timer instant, next mail retry, the poll interval, for a
        follower the next try for the leadership, and for a leader that writes checkpoints the
        next Bangkok midnight."""
        options = [NextWake(time.time() + self.poll, None, "poll")]
        if not self.leadership.leading:
            options.append(NextWake(time.time() + self.leader_retry, None, "leader"))
        elif self.checkpoints is not None:
            midnight = deadline_instant(bangkok_date(now))
            options.append(NextWake(wall_time(self.clock, midnight), midnight, "checkpoint"))
        instant = next_instant(self.db, now)
        if instant is not None:
            options.append(NextWake(wall_time(self.clock, instant), instant, "instant"))
        retry = earliest_retry(self.db, now)
        if retry is not None:
            options.append(NextWake(wall_time(self.clock, retry), retry, "retry"))
        return min(options, key=lambda wake: wake.wall)

    def _job(self, instant: int | None) -> None:
        """The scheduled job: never raises; always tells the main thread it is done."""
        retry = NextWake(time.time() + min(self.poll, ERROR_RETRY_SECONDS), None, "error")
        try:
            try:
                now = self.catch_up(instant)
            except Exception as exc:
                self.log("error", error=f"{type(exc).__name__}: {exc}")
                now = self.clock.now()
                self._next = min(retry, self.next_wake(now), key=lambda wake: wake.wall)
            else:
                self._next = self.next_wake(now)
        except Exception as exc:  # the database is unreachable: try again soon
            self.log("error", error=f"{type(exc).__name__}: {exc}")
            self._next = retry
        finally:
            self._done.set()

    def _plan(self, scheduler: Any, wake: NextWake) -> None:
        scheduler.remove_all_jobs()
        self._plans += 1
        scheduler.add_job(
            self._job,
            "date",
            run_date=dt.datetime.fromtimestamp(wake.wall, tz=dt.UTC),
            args=[wake.instant],
            id=f"wake-{self._plans}",
        )
        delay = max(0.0, wake.wall - time.time())
        if wake.reason == "leader":
            return  # a follower's periodic try: not worth a line every few seconds
        self.log(
            "schedule",
            reason=wake.reason,
            next=format_instant(wake.instant) if wake.instant is not None else None,
            wall_delay=round(delay, 3),
        )

    def run(self, stop: StopFlag, healthy: Callable[[], str | None] | None = None) -> int:
        """Serve until ``stop`` is set (exit 0) or ``healthy`` reports a problem (exit 1)."""
        scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )
        scheduler.start()
        code = 0
        try:
            self._plan(scheduler, NextWake(time.time(), None, "start"))
            while stop.signum is None:
                if self._done.wait(0.2):
                    self._done.clear()
                    if stop.signum is None and self._next is not None:
                        self._plan(scheduler, self._next)
                problem = healthy() if healthy is not None else None
                if problem is not None:
                    self.log("error", error=problem)
                    code = 1
                    break
            if stop.signum is not None:
                self.log("stop", signal=stop.name)
        finally:
            scheduler.shutdown(wait=True)  # lets the current job finish
        return code
