"""Who reads what, over the real API and dashboard, on SQLite and PostgreSQL
(workflow.rules.access).

A table, not a sample: every role × every read endpoint of the API and every dashboard page ×
its own and another organisation → the expected status and, for the outbox, exactly the
permitted rows. The year has mail in it: cycle_2554 is loaded and ticked (``--no-send``) to the
first reminder of OPDC's ``sign`` deliverable, so the outbox holds reminders, overdue notices and
escalations for every organisation and OPDC digests. What a role may read is restated here
independently of the code (CONTRACT.md "REST API"): the outbox in full for admin and auditors,
a province's or group's own organisation only (a group does not read its provinces' letters),
nothing for the committee and evaluators; users and the security log for admin only. Every
refusal must be in the security log.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Cli, pg_url
from tests.support.served import prepare, serve
from tests.support.webforms import signed_in
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.security import SECURITY_LOG
from workflow.web import create_app
from workflow.web.session import SESSION_COOKIE

START = parse_instant("2010-08-20T10:00")
TICK = "2010-11-16T09:00"  # propose_kpis reminders, overdue, escalation; the first sign digest
ROLES = {
    "admin": "admin",
    "auditor": "auditor",
    "committee": "committee",
    "evaluator": "evaluator",
    "p50": "province:TH-50",  # "province own" when reading TH-50 ...
    "p51": "province:TH-51",  # ... and the "other province" reading TH-50
    "north": "group:north-upper-1",  # TH-50's group: still sees only its group's own rows
    "central": "group:central-upper-1",
}
WHO = list(ROLES)
EVERYTHING = "everything"
OUTBOX_ORGS: dict[str, str | set[str]] = {
    "admin": EVERYTHING,
    "auditor": EVERYTHING,
    "committee": set(),
    "evaluator": set(),
    "p50": {"TH-50"},
    "p51": {"TH-51"},
    "north": {"north-upper-1"},
    "central": {"central-upper-1"},
}
ADMIN_ONLY = ["/api/v1/users", "/api/v1/security-log"]
TARGETS = ["TH-50", "TH-51", "north-upper-1", "central-upper-1"]  # own for some, other for most
PUBLIC_READS = [
    "/api/v1/agreements",
    "/api/v1/history",
    "/api/v1/verify",
    "/api/v1/report",
    "/api/v1/diagram",
    "/api/v1/me",
    *[
        f"/api/v1/agreements/{org}{tail}"
        for org in TARGETS
        for tail in ("", "/milestones", "/history", "/score")
    ],
]
PAGES = ["/queue", "/matrix", "/scores", "/diagram", *[f"/agreements/{org}" for org in TARGETS]]


def _session_of(base: str, token: str) -> str:
    """A dashboard session id, signed in through /signin with an API token."""
    browser = signed_in(base, token)
    try:
        return str(browser.cookies[SESSION_COOKIE])
    finally:
        browser.close()


@dataclass
class Site:
    """A served app over a database with a year's mail in it."""

    url: str
    tokens: dict[str, str]
    client: httpx.Client
    rows: list[dict[str, Any]]  # every outbox row, as the operator's CLI lists them
    tmp: Path
    sessions: dict[str, str] = field(default_factory=dict)  # who → dashboard session id

    def get(self, path: str, who: str) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def page(self, path: str, who: str) -> httpx.Response:
        """A dashboard page in ``who``'s browser session (signed in once with its token)."""
        if who not in self.sessions:
            self.sessions[who] = _session_of(str(self.client.base_url), self.tokens[who])
        cookie = f"{SESSION_COOKIE}={self.sessions[who]}"
        return self.client.get(path, headers={"Cookie": cookie})

    def log(self) -> list[dict[str, Any]]:
        """The security log, newest first (read from the database, not through the API)."""
        db = Database(self.url)
        try:
            with db.read() as conn:
                query = select(SECURITY_LOG).order_by(SECURITY_LOG.c.id.desc())
                return [dict(row._mapping) for row in conn.execute(query)]
        finally:
            db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """cycle_2554 loaded and ticked without sending; a user per role; the app served."""
    tmp = tmp_path_factory.mktemp("access")
    url = f"sqlite:///{tmp / 'rubrong.db'}" if request.param == "sqlite" else pg_url()
    clock = VirtualClock(START)
    tokens = prepare(url, clock, ROLES)
    cli = Cli(url, tmp)
    ticked = cli("tick", "--now", TICK, "--no-send")
    assert ticked.code == 0, ticked.err
    rows = cli("outbox", "--json").json()
    with serve(create_app(url, clock)) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield Site(url, tokens, client, rows, tmp)


def permitted(site: Site, who: str) -> list[dict[str, Any]]:
    """The outbox rows ``who`` may read, by the table above (CONTRACT.md), in listing order."""
    orgs = OUTBOX_ORGS[who]
    if orgs == EVERYTHING:
        return site.rows
    return [row for row in site.rows if row["agreement"] in orgs]


def sample_keys(site: Site) -> dict[str, str]:
    """One outbox key per organisation of interest, and one OPDC digest."""
    keys = {}
    for org in (*TARGETS, None):
        key = next(row["key"] for row in site.rows if row["agreement"] == org)
        keys[org or "digest"] = key
    return keys


def assert_refusal_logged(site: Site, who: str, path: str, before: int) -> None:
    """One new security-log entry naming the role, the user and the request."""
    log = site.log()
    assert len(log) == before + 1, log[: len(log) - before]
    entry = log[0]
    assert entry["actor"] == ROLES[who]
    assert entry["action"] == f"GET {path} (user {who})", entry


def test_the_year_has_mail_for_several_organisations(site: Site) -> None:
    agreements = {row["agreement"] for row in site.rows}
    assert set(TARGETS) | {None} <= agreements
    for org in TARGETS:  # each organisation's rows are a real part of the whole
        assert 0 < sum(row["agreement"] == org for row in site.rows) < len(site.rows) // 10
    assert {"reminder", "overdue", "escalation", "digest"} <= {row["kind"] for row in site.rows}
    assert {row["status"] for row in site.rows} <= {"pending", "skipped"}  # --no-send


@pytest.mark.parametrize("who", WHO)
def test_the_outbox_list_holds_exactly_the_permitted_rows(site: Site, who: str) -> None:
    before = len(site.log())
    response = site.get("/api/v1/outbox", who)
    assert response.status_code == 200, response.text
    assert response.json() == permitted(site, who)
    if OUTBOX_ORGS[who] != EVERYTHING:
        assert all(row["agreement"] is not None for row in response.json())  # no digests
    assert len(site.log()) == before  # a filtered list is not a refusal


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("target", [*TARGETS, "digest", "unknown"])
def test_one_outbox_row_is_404_unless_permitted_and_refusals_are_logged(
    site: Site, who: str, target: str
) -> None:
    keys = sample_keys(site)
    key = keys.get(target, "2554/TH-50/no_such_milestone/2010-09-13/reminder/14")
    path = f"/api/v1/outbox/{key}"
    allowed = {row["key"] for row in permitted(site, who)}
    before = len(site.log())
    response = site.get(path, who)
    if key in allowed:
        assert response.status_code == 200, response.text
        (expected,) = [row for row in site.rows if row["key"] == key]
        assert response.json() == expected
        assert len(site.log()) == before
        return
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "unknown outbox row" in response.json()["detail"]
    assert "@" not in response.text  # not a word of the letter or its address
    if target == "unknown":
        assert len(site.log()) == before  # nothing was refused: there is no such row
    else:
        assert_refusal_logged(site, who, path, before)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("path", PUBLIC_READS)
def test_public_documents_are_read_by_every_role(site: Site, who: str, path: str) -> None:
    before = len(site.log())
    response = site.get(path, who)
    assert response.status_code == 200, (who, path, response.text)
    assert "rubrong.example" not in response.text  # no organisation's address in them
    assert len(site.log()) == before


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("path", ADMIN_ONLY)
def test_users_and_the_security_log_are_admin_only(site: Site, who: str, path: str) -> None:
    before = len(site.log())
    response = site.get(path, who)
    if who == "admin":
        assert response.status_code == 200, response.text
        assert isinstance(response.json(), list) and response.json()
        return
    assert response.status_code == 403, response.text
    assert "only admin may read" in response.json()["detail"]
    assert_refusal_logged(site, who, path, before)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("path", PAGES)
def test_dashboard_pages_of_public_documents_open_for_every_role(
    site: Site, who: str, path: str
) -> None:
    response = site.page(path, who)
    assert response.status_code == 200, (who, path, response.text[:300])
    assert "rubrong.example" not in response.text


@pytest.mark.parametrize("who", WHO)
def test_the_dashboard_outbox_shows_exactly_the_permitted_rows(site: Site, who: str) -> None:
    shown: list[str] = []
    text = ""
    path: str | None = "/outbox"
    while path is not None:  # 50 rows a page: follow the "next" links to the last page
        response = site.page(path, who)
        assert response.status_code == 200, response.text[:300]
        shown += [part.split('"', 1)[0] for part in response.text.split('data-key="')[1:]]
        text += response.text
        following = re.search(r'<a href="([^"]+)" rel="next"', response.text)
        path = html.unescape(following.group(1)) if following else None
    visible = permitted(site, who)
    assert shown == [row["key"] for row in visible]
    addresses = {row["to"] for row in site.rows}
    own = {row["to"] for row in visible}
    assert {a for a in addresses if a in text} == own  # no one else's address


def test_a_revoked_account_loses_its_token_and_its_session_at_once(site: Site) -> None:
    cli = Cli(site.url, site.tmp)
    added = cli("user", "add", "kasem", "--role", "province:TH-50")
    assert added.code == 0, added.err
    old = added.out.splitlines()[-1]
    cookie = {"Cookie": f"{SESSION_COOKIE}={_session_of(str(site.client.base_url), old)}"}
    assert site.client.get("/outbox", headers=cookie).status_code == 200
    assert cli("user", "revoke", "kasem").code == 0
    gone = site.client.get("/outbox", headers=cookie, follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/signin")
    headers = {"Authorization": f"Bearer {old}"}
    assert site.client.get("/api/v1/outbox", headers=headers).status_code == 401
    again = cli("user", "add", "kasem", "--role", "province:TH-51")
    assert again.code == 0, again.err
    new = {"Authorization": f"Bearer {again.out.splitlines()[-1]}"}
    rows = site.client.get("/api/v1/outbox", headers=new).json()
    assert rows and {row["agreement"] for row in rows} == {"TH-51"}
    assert site.client.get("/api/v1/outbox", headers=headers).status_code == 401
