"""People sign in as people: passwords, mailed one-time links, server-side sessions, CSRF,
rate limits, sign-out (here and everywhere) and API tokens, over raw HTTP against the served
app on SQLite and PostgreSQL, with real mail through an in-process aiosmtpd server.

The service's clock and the wall clock that sessions and links expire by are both virtual
here, so expiry is tested by moving them, never by waiting.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Cli, pg_url
from tests.support.served import prepare, serve
from tests.support.signin import ask_link, csrf_of, link_in, password_signin, use_link
from tests.support.smtp import MailSink, text_of
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.security import SECURITY_LOG
from workflow.store.tables import SessionRow, SigninLinkRow
from workflow.store.users import set_password
from workflow.web import create_app
from workflow.web.session import SESSION_COOKIE

START = parse_instant("2010-09-01T10:00")
WALL = parse_instant("2024-01-15T09:00")
PASSWORD = "a long enough password"
SESSIONS = SessionRow.__table__  # type: ignore[attr-defined]
LINKS = SigninLinkRow.__table__  # type: ignore[attr-defined]
ROLES = {
    "admin": "admin",
    "p50": "province:TH-50",
    "p51": "province:TH-51",
    "p52": "province:TH-52",
    "p53": "province:TH-53",
    "p58": "province:TH-58",
    "g1": "group:north-upper-1",
    "robot": "auditor",
}


@dataclass
class Site:
    """The served app, its database, clocks, tokens and mail sink."""

    base: str
    url: str
    clock: VirtualClock
    wall: VirtualClock
    tokens: dict[str, str]
    sink: MailSink
    cli: Cli

    def client(self) -> httpx.Client:
        """A fresh browser-like client (its own cookie jar)."""
        return httpx.Client(base_url=self.base, timeout=60)

    def log(self) -> list[tuple[str, str, str]]:
        """Every security log entry: (actor, action, reason)."""
        with Database(self.url).read() as conn:
            query = select(SECURITY_LOG).order_by(SECURITY_LOG.c.id)
            return [(row.actor, row.action, row.reason) for row in conn.execute(query)]

    def sessions(self) -> list[dict[str, object]]:
        """Every session row."""
        with Database(self.url).read() as conn:
            return [dict(row._mapping) for row in conn.execute(select(SESSIONS))]


def _email(name: str) -> str:
    return f"{name}@rubrong.example"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """The app on each backend, with cycle_2554, a user per role (with e-mail and password)."""
    folder = tmp_path_factory.mktemp("sessions")
    url = f"sqlite:///{folder / 'rubrong.db'}" if request.param == "sqlite" else pg_url()
    clock, wall = VirtualClock(START), VirtualClock(WALL)
    tokens = prepare(url, clock, {})
    cli = Cli(url, folder)
    for name, role in ROLES.items():
        added = cli("user", "add", name, "--role", role, "--email", _email(name))
        assert added.code == 0, added.err
        tokens[name] = added.out.splitlines()[-1]
        set_password(Database(url), name, PASSWORD)
    sink = MailSink()
    sink.controller.start()
    app = create_app(url, clock, mailer=sink.mailer(), wall=wall)
    try:
        with serve(app) as base:
            yield Site(base, url, clock, wall, tokens, sink, cli)
    finally:
        sink.controller.stop()


def _is_signed_in(client: httpx.Client) -> bool:
    """Whether the browser's home page opens (else it is sent to the sign-in page)."""
    answer = client.get("/", follow_redirects=True)
    assert answer.status_code == 200, answer.text
    return answer.url.path != "/signin"


def _set_cookie(answer: httpx.Response) -> str:
    found = [v for v in answer.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE)]
    assert len(found) == 1, answer.headers
    return found[0]


def test_a_province_signs_in_with_a_mailed_link_and_lands_on_a_page(site: Site) -> None:
    with site.client() as browser, site.client() as stranger:
        unknown = ask_link(stranger, "nobody@rubrong.example")
        answer = ask_link(browser, _email("p50"))
        # The same answer whether or not the address has an account.
        assert (answer.status_code, answer.headers["location"]) == (
            unknown.status_code,
            unknown.headers["location"],
        )
        assert answer.status_code == 303 and SESSION_COOKIE not in answer.cookies
        letter = site.sink.wait_for(_email("p50"))
        text = text_of(letter)
        assert text.index("เรียน") < text.index("Dear")  # Thai first, English beneath
        assert "15" in text and "p50" in text
        link = link_in(letter)
        assert link.startswith(f"{site.base}/signin/link/")
        token = link.rsplit("/", 1)[1]
        with Database(site.url).read() as conn:
            stored = repr([dict(r._mapping) for r in conn.execute(select(LINKS))])
        assert token not in stored  # only its hash is kept
        # Opening the link (as a mail scanner or preview would, twice) spends nothing.
        for _ in range(2):
            preview = stranger.get(link, follow_redirects=False)
            assert preview.status_code == 200 and SESSION_COOKIE not in preview.cookies
            assert "p50" in preview.text
        assert not _is_signed_in(stranger)
        opened = use_link(browser, link)
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        cookie = _set_cookie(opened)
        lowered = cookie.lower()
        assert "httponly" in lowered and "samesite=lax" in lowered
        value = opened.cookies[SESSION_COOKIE]
        assert value not in site.tokens.values() and value != token
        assert value not in repr(site.sessions())  # the database keeps only its hash
        page = browser.get("/", follow_redirects=True)
        assert page.status_code == 200 and "p50" in page.text
        assert page.url.path == "/agreements/TH-50"  # a province lands on its agreement
        again = stranger.get(link, follow_redirects=False)
        assert again.status_code == 410 and SESSION_COOKIE not in again.cookies
        assert "ใช้ไปแล้ว" in again.text or "already used" in again.text
        spent = stranger.post(link, data={"csrf_token": csrf_of(stranger)})
        assert spent.status_code == 410 and SESSION_COOKIE not in spent.cookies
        assert not _is_signed_in(stranger)
    assert site.sink.to("nobody@rubrong.example") == []
    actions = [action for _actor, action, _reason in site.log()]
    assert any("POST /signin/link (user p50 #" in a and "[sent]" in a for a in actions)
    assert any("POST /signin/link (login 'nobody@" in a and "[no-account]" in a for a in actions)
    assert any("POST /signin/link (user p50 #" in a and "[ok]" in a for a in actions)
    assert any(a.startswith("GET /signin/link [refused]") for a in actions)
    assert any(a.startswith("POST /signin/link [refused]") for a in actions)


def test_an_expired_link_opens_nothing(site: Site) -> None:
    with site.client() as browser:
        before = len(site.sink.to(_email("p51")))
        assert ask_link(browser, "p51").status_code == 303  # by name works too
        link = link_in(site.sink.wait_for(_email("p51"), before + 1))
        site.wall.set(site.wall.now() + 16 * 60)
        answer = browser.get(link, follow_redirects=False)
        assert answer.status_code == 410 and SESSION_COOKIE not in answer.cookies
        assert "หมดอายุ" in answer.text or "expired" in answer.text
        assert not _is_signed_in(browser)
        bogus = browser.get("/signin/link/" + secrets.token_urlsafe(32), follow_redirects=False)
        assert bogus.status_code == 400 and SESSION_COOKIE not in bogus.cookies
    assert any("link expired" in reason for _a, _b, reason in site.log())


def test_the_cookie_holds_a_session_never_a_token(site: Site) -> None:
    with site.client() as browser:
        form = {"csrf_token": csrf_of(browser), "token": site.tokens["robot"]}
        answer = browser.post("/signin", data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        assert "rubrong_token" not in answer.cookies
        value = answer.cookies[SESSION_COOKIE]
        assert value != site.tokens["robot"] and value not in site.tokens.values()
        assert _is_signed_in(browser)
        signed = password_signin(browser, "p52", PASSWORD)
        assert signed.status_code == 303
        assert signed.cookies[SESSION_COOKIE] not in (value, *site.tokens.values())
    assert any("POST /signin API token (user robot #" in a for _x, a, _r in site.log())


def test_forms_without_the_right_csrf_token_change_nothing(site: Site) -> None:
    with site.client() as browser, site.client() as other:
        assert password_signin(browser, "p53", PASSWORD).status_code == 303
        assert password_signin(other, "p53", PASSWORD).status_code == 303
        count = len(site.log())
        for data in ({}, {"csrf_token": "x" * 43}, {"csrf_token": csrf_of(other)}):
            refused = browser.post("/signout/everywhere", data=data, follow_redirects=False)
            assert refused.status_code == 403, refused.text
        assert _is_signed_in(browser) and _is_signed_in(other)  # nothing was ended
        no_token = browser.post("/signin", data={"login": "p50", "password": PASSWORD})
        assert no_token.status_code == 403
        assert _is_signed_in(browser)
    with site.client() as fresh:  # before sign-in: the double-submit cookie is required
        csrf = csrf_of(fresh)
        fresh.cookies.clear()
        form = {"csrf_token": csrf, "login": "p53", "password": PASSWORD}
        assert fresh.post("/signin", data=form).status_code == 403
        assert SESSION_COOKIE not in fresh.cookies
    refusals = [entry for entry in site.log()[count:] if "CSRF" in entry[2]]
    assert len(refusals) == 5


def _plant(client: httpx.Client, value: str) -> None:
    client.cookies.set(SESSION_COOKIE, value, domain="127.0.0.1", path="/")


def test_a_session_id_planted_before_sign_in_is_never_the_one_after(site: Site) -> None:
    planted = secrets.token_urlsafe(32)
    with site.client() as victim, site.client() as attacker:
        _plant(victim, planted)
        answer = password_signin(victim, "p58", PASSWORD)
        assert answer.status_code == 303
        assert answer.cookies[SESSION_COOKIE] != planted
        assert _is_signed_in(victim)
        _plant(attacker, planted)
        assert not _is_signed_in(attacker)  # the planted id opens nothing
    # The attacker's own live session planted in a browser ends when that browser signs in.
    with site.client() as victim, site.client() as attacker:
        assert password_signin(attacker, "g1", PASSWORD).status_code == 303
        own = attacker.cookies[SESSION_COOKIE]
        _plant(victim, own)
        after = password_signin(victim, "p58", PASSWORD)
        assert after.status_code == 303 and after.cookies[SESSION_COOKIE] != own
        assert not _is_signed_in(attacker)


def test_six_bad_passwords_are_refused_with_429_for_a_while(site: Site) -> None:
    with site.client() as browser:
        for _ in range(5):
            assert password_signin(browser, "admin", "wrong password!").status_code == 401
        blocked = password_signin(browser, "admin", PASSWORD)  # even the right one, for now
        assert blocked.status_code == 429 and SESSION_COOKIE not in blocked.cookies
        assert password_signin(browser, _email("admin"), "wrong again!!").status_code == 429
        site.clock.set(site.clock.now() + 16 * 60)
        assert password_signin(browser, "admin", PASSWORD).status_code == 303
        for index in range(20):  # 20 failures from one address, whatever the account
            assert password_signin(browser, f"ghost{index}", "nope nope").status_code == 401
        assert password_signin(browser, "p50", PASSWORD).status_code == 429
        site.clock.set(site.clock.now() + 16 * 60)
        assert password_signin(browser, "p50", PASSWORD).status_code == 303
    entries = site.log()
    assert sum("(user admin #" in a and "[failure]" in a for _x, a, _r in entries) == 5
    assert sum("[rate-limited]" in a for _x, a, _r in entries) == 3
    assert any("(user admin #" in a and "[ok]" in a for _x, a, _r in entries)


def test_user_revoke_ends_the_browser_session_at_its_next_request(site: Site) -> None:
    name = "leaving"
    added = site.cli("user", "add", name, "--role", "province:TH-60", "--email", _email(name))
    assert added.code == 0, added.err
    token = added.out.splitlines()[-1]
    set_password(Database(site.url), name, PASSWORD)
    with site.client() as browser, site.client() as api:
        assert password_signin(browser, name, PASSWORD).status_code == 303
        assert _is_signed_in(browser)
        auth = {"Authorization": f"Bearer {token}"}
        assert api.get("/api/v1/agreements", headers=auth).status_code == 200
        assert site.cli("user", "revoke", name).code == 0
        assert not _is_signed_in(browser)
        assert api.get("/api/v1/agreements", headers=auth).status_code == 401
        assert password_signin(browser, name, PASSWORD).status_code == 401
    assert any(f"user revoke (user {name})" in a for _x, a, _r in site.log())


def test_sign_out_everywhere_ends_every_browser_of_the_account(site: Site) -> None:
    with site.client() as first, site.client() as second, site.client() as third:
        for browser in (first, second, third):
            assert password_signin(browser, "g1", PASSWORD).status_code == 303
        page = first.get("/signin")
        csrf = csrf_of(first)
        assert page.status_code == 200
        out = first.post("/signout", data={"csrf_token": csrf}, follow_redirects=False)
        assert out.status_code == 303 and not _is_signed_in(first)
        assert _is_signed_in(second) and _is_signed_in(third)  # only this browser
        csrf = csrf_of(second)
        everywhere = second.post(
            "/signout/everywhere", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert everywhere.status_code == 303
        assert not _is_signed_in(second) and not _is_signed_in(third)
    actions = [a for _x, a, _r in site.log()]
    assert any(a.startswith("POST /signout (user g1 #") and "[ok]" in a for a in actions)
    assert any(a.startswith("POST /signout/everywhere (user g1 #") for a in actions)


def test_an_idle_session_ends(site: Site) -> None:
    with site.client() as browser:
        assert password_signin(browser, "p51", PASSWORD).status_code == 303
        site.wall.set(site.wall.now() + 90 * 60)
        assert _is_signed_in(browser)  # a request keeps it alive …
        site.wall.set(site.wall.now() + 2 * 3600 + 1)
        assert not _is_signed_in(browser)  # … two idle hours end it


def test_api_tokens_through_the_cli_and_the_server(site: Site) -> None:
    added = site.cli("user", "token", "add", "robot", "--label", "exporter")
    assert added.code == 0, added.err
    token = added.out.splitlines()[-1]
    with site.client() as api:
        auth = {"Authorization": f"Bearer {token}"}
        assert api.get("/api/v1/agreements", headers=auth).status_code == 200
        listed = site.cli("user", "token", "list", "robot", "--json").json()
        used = next(t for t in listed if t["prefix"] == token[:8])
        assert used["label"] == "exporter" and used["last_used_at"] is not None
        rotated = site.cli("user", "token", "rotate", "robot", token[:8])
        assert rotated.code == 0, rotated.err
        fresh = rotated.out.splitlines()[-1]
        assert api.get("/api/v1/agreements", headers=auth).status_code == 401
        new_auth = {"Authorization": f"Bearer {fresh}"}
        assert api.get("/api/v1/agreements", headers=new_auth).status_code == 200
        assert site.cli("user", "token", "revoke", "robot", fresh[:8]).code == 0
        assert api.get("/api/v1/agreements", headers=new_auth).status_code == 401
        first = {"Authorization": f"Bearer {site.tokens['robot']}"}
        assert api.get("/api/v1/agreements", headers=first).status_code == 200
    actions = [a for _x, a, _r in site.log()]
    assert any(a.startswith("user token rotate (user robot)") for a in actions)
    assert any(a.startswith("user token revoke (user robot)") for a in actions)
