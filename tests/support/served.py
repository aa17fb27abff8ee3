"""Serving the web app in tests: uvicorn in a thread on a free port, a prepared database."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.conftest import CYCLE_2554
from workflow.config.validate import read_cycle_file
from workflow.rules.clock import VirtualClock
from workflow.store.database import Database
from workflow.store.users import add_user, revoke_user
from workflow.usecases.load import load_cycle


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free loopback port; yield its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


_CYCLE = read_cycle_file(CYCLE_2554)


def prepare(url: str, clock: VirtualClock, roles: dict[str, str]) -> dict[str, str]:
    """Load cycle_2554 into ``url`` and create one user per role; return their tokens."""
    db = Database(url)
    db.create_schema()
    load_cycle(db, clock, _CYCLE, CYCLE_2554.read_text(encoding="utf-8"))
    tokens = {name: add_user(db, clock, name, role) for name, role in roles.items()}
    if "revoked" in tokens:
        revoke_user(db, clock, "revoked")
    db.dispose()
    return tokens


@dataclass
class Api:
    """A running server, its database URL, clock and tokens."""

    base: str
    url: str
    clock: VirtualClock
    tokens: dict[str, str]
    client: httpx.Client

    def headers(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.tokens.get(who, who)}"}

    def get(self, path: str, who: str | None = "auditor", **kw: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers(who), **kw)

    def fire(self, agreement: str, body: Any, who: str | None) -> httpx.Response:
        return self.client.post(
            f"/api/v1/agreements/{agreement}/events", json=body, headers=self.headers(who)
        )

    def post_raw(self, agreement: str, content: Any, who: str | None, **kw: Any) -> httpx.Response:
        headers = {"Content-Type": "application/json", **self.headers(who), **kw}
        return self.client.post(
            f"/api/v1/agreements/{agreement}/events", content=content, headers=headers
        )

    def snapshot(self, agreement: str) -> tuple[int, int, bool]:
        """(history entries, agreement version, chain ok): what a refusal must not change."""
        history = self.get("/api/v1/history").json()
        version = self.get(f"/api/v1/agreements/{agreement}").json()["version"]
        return len(history), version, self.get("/api/v1/verify").json()["ok"]
