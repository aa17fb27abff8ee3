"""``rubrong run``: the service (scheduler, mail dispatcher, optional web dashboard + API)."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from notifications.mailers import Mailer
from workflow.cli.app import Settings, app, parse_time_option
from workflow.cli.mail import make_mailer
from workflow.rules.clock import AcceleratedClock, SystemClock
from workflow.rules.defaults import LEADER_RETRY_SECONDS, POLL_SECONDS, RUN_BATCH
from workflow.rules.errors import BadInput, EnvironmentProblem
from workflow.store.database import Database

if TYPE_CHECKING:  # the service (APScheduler…) is imported only when ``run`` runs
    from workflow.usecases.service import Checkpoints, ServiceClock, StopFlag

WEB_MODULE = "workflow.web.app"
WEB_START_SECONDS = 20.0
CHECKPOINT_KEY_ENV = "RUBRONG_CHECKPOINT_KEY"
CHECKPOINT_DIR_ENV = "RUBRONG_CHECKPOINT_DIR"


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8000`` for IPv6) → (host, port); exit 2 when malformed."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"--web: expected HOST:PORT, got {value!r}")
    return host, int(port)


def load_web_app(db_url: str, clock: ServiceClock, mailer: Mailer | None = None) -> Any:
    """``workflow.web.app.create_app(db_url, clock, mailer)``, imported only with ``--web``
    (``mailer`` sends the dashboard's sign-in links)."""
    try:
        module = importlib.import_module(WEB_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name is not None and WEB_MODULE.startswith(exc.name):
            raise BadInput(
                f"--web: the web dashboard is not available (module {WEB_MODULE} is missing)"
            ) from exc
        raise
    return module.create_app(db_url, clock, mailer)


class WebServer:
    """uvicorn in a background thread; stopped by setting ``should_exit``."""

    def __init__(self, asgi: Any, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(
            asgi, host=host, port=port, log_config=None, access_log=False, lifespan="auto"
        )
        self.where = f"{host}:{port}"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="web", daemon=True)

    def start(self) -> None:
        """Start serving; exit 1 when the server cannot start (port taken…)."""
        self.thread.start()
        deadline = time.monotonic() + WEB_START_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise EnvironmentProblem(f"--web: cannot serve on {self.where}")
            time.sleep(0.02)

    def problem(self) -> str | None:
        """A message once the server thread has died."""
        return None if self.thread.is_alive() else f"web server on {self.where} stopped"

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)


def make_clock(
    clock_start: str | None, speed: float | None, clock_stop: str | None = None
) -> ServiceClock:
    """The system clock, or an accelerated one with ``--clock-start``/``--speed`` (that stops
    at ``--clock-stop``)."""
    if clock_start is None and speed is None:
        if clock_stop is not None:
            raise BadInput("--clock-stop: only with a virtual clock (--clock-start, --speed)")
        return SystemClock()
    if speed is not None and not speed > 0:
        raise BadInput("--speed: must be a number > 0 (virtual seconds per wall second)")
    parsed = parse_time_option(clock_start, "--clock-start")
    start = int(time.time()) if parsed is None else parsed
    rate = 1.0 if speed is None else speed
    stop = parse_time_option(clock_stop, "--clock-stop")
    if stop is None:
        return AcceleratedClock(start, rate)
    if stop < start:
        raise BadInput("--clock-stop: must not be before --clock-start")
    from workflow.usecases.service import StoppingClock

    return StoppingClock(start, rate, stop)


def checkpoint_plan(key: Path | None, directory: Path | None) -> Checkpoints | None:
    """Daily checkpoints when a directory is given (option or env), which needs a key (option
    or env); a key given as an option without a directory is a mistake (exit 2). A key in the
    environment alone (it serves ``rubrong checkpoint`` too) writes nothing."""
    from workflow.usecases.checkpoint import load_private_key
    from workflow.usecases.service import Checkpoints

    if directory is None and os.environ.get(CHECKPOINT_DIR_ENV):
        directory = Path(os.environ[CHECKPOINT_DIR_ENV])
    if directory is None:
        if key is not None:
            raise BadInput(
                f"--checkpoint-key: give --checkpoint-dir DIR (or set {CHECKPOINT_DIR_ENV})"
            )
        return None
    if key is None and os.environ.get(CHECKPOINT_KEY_ENV):
        key = Path(os.environ[CHECKPOINT_KEY_ENV])
    if key is None:
        raise BadInput(
            f"--checkpoint-dir: give --checkpoint-key FILE (or set {CHECKPOINT_KEY_ENV})"
        )
    if directory.exists() and not directory.is_dir():
        raise BadInput(f"--checkpoint-dir: {directory} is not a directory")
    return Checkpoints(load_private_key(key), directory)


@app.command(name="run")
def run_command(
    ctx: typer.Context,
    web: Annotated[
        str | None, typer.Option("--web", help="also serve the dashboard + API on HOST:PORT")
    ] = None,
    clock_start: Annotated[
        str | None,
        typer.Option("--clock-start", help="start a virtual clock at TIME (ISO 8601)"),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option("--speed", help="virtual seconds per wall second (with a virtual clock)"),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="catch up (tick + send) once, then exit (no --web)")
    ] = False,
    poll: Annotated[
        float,
        typer.Option("--poll", help="wall seconds between checks for mail queued elsewhere"),
    ] = POLL_SECONDS,
    leader_retry: Annotated[
        float,
        typer.Option(
            "--leader-retry",
            help="PostgreSQL: wall seconds between a follower's tries to lead the timers",
        ),
    ] = LEADER_RETRY_SECONDS,
    batch: Annotated[
        int, typer.Option("--batch", help="mail rows one dispatcher claims at a time")
    ] = RUN_BATCH,
    clock_origin: Annotated[
        float | None,
        typer.Option(
            "--clock-origin",
            help="wall time (epoch seconds) at which the virtual clock reads --clock-start "
            "(default: when the service is ready); processes given the same share one clock",
        ),
    ] = None,
    clock_stop: Annotated[
        str | None,
        typer.Option(
            "--clock-stop",
            help="the virtual clock stops at TIME (ISO 8601) and reads TIME from then on",
        ),
    ] = None,
    checkpoint_key: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint-key",
            help=f"sign a daily checkpoint with this private key (PEM; env {CHECKPOINT_KEY_ENV})",
            show_default=False,
        ),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint-dir",
            help="write checkpoint-YYYY-MM-DD.json here once per Bangkok day "
            f"(env {CHECKPOINT_DIR_ENV})",
            show_default=False,
        ),
    ] = None,
) -> None:
    """The service: wakes at every timer instant, sends mail, stops cleanly on SIGTERM.

    Several processes may run on one PostgreSQL database: one of them (the leader) runs the
    timers, all of them send mail, each mail once.
    """
    from workflow.usecases.service import StopFlag

    if not leader_retry > 0:
        raise BadInput("--leader-retry: must be a number of seconds > 0")
    if batch < 1:
        raise BadInput("--batch: must be a whole number ≥ 1")
    if clock_origin is not None and clock_start is None and speed is None:
        raise BadInput("--clock-origin: only with a virtual clock (--clock-start, --speed)")
    checkpoints = checkpoint_plan(checkpoint_key, checkpoint_dir)
    stop = StopFlag()
    stop.install()  # from here on SIGTERM/SIGINT let the current work finish (--once too)
    try:
        tuning = Tuning(poll, leader_retry, batch, clock_origin, clock_stop, checkpoints)
        code = _serve(ctx.obj, stop, web, clock_start, speed, once, tuning)
    finally:
        stop.restore()
    if code:
        raise typer.Exit(code)


@dataclass(frozen=True)
class Tuning:
    """The service's timing and batch options."""

    poll: float
    leader_retry: float
    batch: int
    clock_origin: float | None = None
    clock_stop: str | None = None
    checkpoints: Checkpoints | None = None


def _serve(
    options: Settings,
    stop: StopFlag,
    web: str | None,
    clock_start: str | None,
    speed: float | None,
    once: bool,
    tuning: Tuning,
) -> int:
    from workflow.usecases.leader import Leadership, leadership_for
    from workflow.usecases.service import JsonLog, JsonLogHandler, Service

    poll = tuning.poll
    if not poll > 0:
        raise BadInput("--poll: must be a number of seconds > 0")
    clock = make_clock(clock_start, speed, tuning.clock_stop)
    listen = parse_listen(web) if web is not None else None
    asgi = (
        load_web_app(options.db_url, clock, cast(Mailer, make_mailer(options)))
        if listen is not None
        else None
    )
    db = Database(options.db_url, pooled=True)
    log = JsonLog(clock)
    handler = JsonLogHandler(log)
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)  # so that every stderr line is a JSON line
    server: WebServer | None = None
    leadership: Leadership | None = None
    try:
        db.create_schema()
        mailer = cast(Mailer, make_mailer(options))
        # --once is a catch-up like ``tick``: it ticks whoever leads (ticks are exactly-once).
        leadership = None if once else leadership_for(db, log)
        service = Service(
            db,
            clock,
            mailer,
            log,
            poll=poll,
            leadership=leadership,
            leader_retry=tuning.leader_retry,
            batch=tuning.batch,
            checkpoints=tuning.checkpoints,
        )
        if listen is not None and not once:
            server = WebServer(asgi, *listen)
            server.start()
        if isinstance(clock, AcceleratedClock):
            # virtual time starts when the service is ready, unless told when
            clock.origin = time.time() if tuning.clock_origin is None else tuning.clock_origin
        log(
            "start",
            pid=os.getpid(),
            clock="accelerated" if isinstance(clock, AcceleratedClock) else "system",
            speed=getattr(clock, "speed", 1.0),
            mailer=type(mailer).__name__,
            web=web,
            once=once,
            checkpoint_dir=(
                str(tuning.checkpoints.directory) if tuning.checkpoints is not None else None
            ),
        )
        if once:
            service.catch_up()
            db.dispose()
            log("stopped", exit_code=0)
            return 0
        if server is not None:
            log("web", listen=server.where)
        code = service.run(stop, server.problem if server is not None else None)
        if server is not None:
            server.stop()
            server = None
        if leadership is not None:
            leadership.close()  # before the last line: "released" comes before "stopped"
            leadership = None
        db.dispose()
        log("stopped", exit_code=code, wakes=service.wakes)
        return code
    finally:
        if server is not None:
            server.stop()
        if leadership is not None:
            leadership.close()
        db.dispose()
        logging.captureWarnings(False)
        root.removeHandler(handler)
