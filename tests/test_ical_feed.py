"""The read-only iCalendar feed per organisation, over raw HTTP against the served app on SQLite
and PostgreSQL: links issued by the CLI and from the agreement page, parsed with ``icalendar``,
compared with the ``.ics`` the real letters carry (sent by ``tick`` to an in-process SMTP
server), revoked, refused (and logged), and moved by ``load --apply-changes``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from icalendar import Calendar
from sqlalchemy import select

from tests.conftest import CYCLE_2554, Cli, kpi_set, pg_url
from tests.support.served import prepare, serve
from tests.support.signin import CSRF, password_signin
from tests.support.smtp import MailSink
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.security import SECURITY_LOG
from workflow.store.users import set_password
from workflow.usecases.ical_feeds import FEEDS, hash_secret
from workflow.web import create_app

START = parse_instant("2010-08-20T10:00")
PASSWORD = "a long enough password"
ROLES = {"admin": "admin", "p50": "province:TH-50", "p51": "province:TH-51"}
LINK = re.compile(r"^(?:https?://[^/]+)?(/ical/([A-Za-z0-9_-]{43})/([^/]+)\.ics)$")


@dataclass
class Site:
    """The served app, its database, the CLI on it and a mail sink for ``tick``."""

    base: str
    url: str
    cli: Cli
    sink: MailSink

    def client(self) -> httpx.Client:
        """A fresh client with its own cookie jar."""
        return httpx.Client(base_url=self.base, timeout=60)

    def issue(self, org: str, *extra: str) -> str:
        """``rubrong ical issue ORG``: the feed's path (the last line printed)."""
        issued = self.cli("ical", "issue", org, *extra)
        assert issued.code == 0, issued.err
        found = LINK.match(issued.out.splitlines()[-1])
        assert found is not None, issued.out
        assert found.group(3) == org
        return found.group(1)

    def log(self) -> list[dict[str, Any]]:
        """Every security log entry."""
        with Database(self.url).read() as conn:
            rows = conn.execute(select(SECURITY_LOG).order_by(SECURITY_LOG.c.id))
            return [dict(row._mapping) for row in rows]

    def milestones(self, org: str) -> list[dict[str, Any]]:
        """``milestones ORG --json``."""
        listed = self.cli("milestones", org, "--json")
        assert listed.code == 0, listed.err
        rows: list[dict[str, Any]] = listed.json()
        return rows


def _site(url: str, folder: Path) -> Iterator[Site]:
    clock = VirtualClock(START)
    prepare(url, clock, {})
    cli = Cli(url, folder)
    for name, role in ROLES.items():
        added = cli("user", "add", name, "--role", role, "--email", f"{name}@rubrong.example")
        assert added.code == 0, added.err
        set_password(Database(url), name, PASSWORD)
    sink = MailSink()
    sink.controller.start()
    try:
        with serve(create_app(url, clock, mailer=sink.mailer())) as base:
            yield Site(base, url, cli, sink)
    finally:
        sink.controller.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """One served app per backend with cycle_2554 and three accounts."""
    folder = tmp_path_factory.mktemp("ical")
    url = f"sqlite:///{folder / 'rubrong.db'}" if request.param == "sqlite" else pg_url()
    yield from _site(url, folder)


@pytest.fixture
def fresh(db_url: str, tmp_path: Path) -> Iterator[Site]:
    """A served app of its own (for a test that changes the cycle)."""
    yield from _site(db_url, tmp_path)


def _events(body: bytes) -> dict[str, Any]:
    """The calendar's events by milestone (the UID's third part)."""
    calendar = Calendar.from_ical(body)
    events: dict[str, Any] = {}
    for event in calendar.walk("VEVENT"):
        uid = str(event["UID"])
        events[uid.split("@")[0].split(".")[2]] = event
    return events


def _fetch(site: Site, path: str, **headers: str) -> httpx.Response:
    with site.client() as client:
        return client.get(path, headers=headers)


def _mailed_ics(message: EmailMessage) -> Calendar | None:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return Calendar.from_ical(payload)
    return None


def _day(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


def test_the_feed_has_one_event_per_deadline_with_the_uid_of_the_mailed_ics(site: Site) -> None:
    path = site.issue("TH-50")
    answer = _fetch(site, path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "no-cache" in answer.headers["cache-control"]
    assert answer.headers["etag"].startswith('"') and answer.headers["last-modified"]
    calendar = Calendar.from_ical(answer.content)
    assert "เชียงใหม่" in str(calendar["X-WR-CALNAME"])
    assert "Chiang Mai" in str(calendar["X-WR-CALNAME"])
    assert calendar["REFRESH-INTERVAL"].to_ical() == b"PT1H"
    assert str(calendar["X-PUBLISHED-TTL"]) == "PT1H"

    events = _events(answer.content)
    dated = [m for m in site.milestones("TH-50") if m["due"] is not None]
    assert sorted(events) == sorted(m["milestone"] for m in dated)
    assert len(calendar.walk("VEVENT")) == len(dated)  # one event per deadline, no more
    for m in dated:
        event = events[m["milestone"]]
        assert str(event["UID"]) == f"2554.TH-50.{m['milestone']}@rubrong.invalid"
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        assert type(start) is dt.date and type(end) is dt.date  # all-day
        assert end == _day(m["due"]) + dt.timedelta(days=1)
        assert start == _day(m["start"] if m["kind"] == "window" else m["due"])
        assert str(event["STATUS"]) == "CONFIRMED"
    window = events["negotiation"]
    assert (window.decoded("DTEND") - window.decoded("DTSTART")).days == 2  # 27–28 Sep 2010
    sar6 = events["sar6"]
    summary, description = str(sar6["SUMMARY"]), str(sar6["DESCRIPTION"])
    assert "รายงานการประเมินผลตนเอง" in summary and "Self Assessment Report" in summary
    thai, english = description.split("\n\n")
    assert "30 เมษายน 2554" in thai and "30 April 2011" in english

    # The letters: a reminder carries the deadline's event; the feed's has its UID and date.
    ticked = site.cli(
        "tick", "--now", "2010-08-30T09:00", smtp=f"smtp://127.0.0.1:{site.sink.port}"
    )
    assert ticked.code == 0, ticked.err
    mailed: dict[str, Any] = {}
    for _rcpt, message in site.sink.messages:
        found = _mailed_ics(message)
        if found is not None:
            for event in found.walk("VEVENT"):
                mailed[str(event["UID"])] = event
    propose = events["propose_kpis"]
    assert str(propose["UID"]) in mailed, sorted(mailed)[:5]
    assert mailed[str(propose["UID"])].decoded("DTSTART") == propose.decoded("DTSTART")


def test_a_delivered_deliverable_is_cancelled_like_the_receipt_cancels_it(site: Site) -> None:
    path = site.issue("TH-51")
    before = _fetch(site, path)
    fired = site.cli(
        "fire", "TH-51", "propose_kpis", "--as", "province:TH-51",
        "--at", "2010-09-01T10:00", "--data", json.dumps(kpi_set()),
    )  # fmt: skip
    assert fired.code == 0, fired.err
    after = _fetch(site, path, **{"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200, "a change must not answer 304"
    assert after.headers["etag"] != before.headers["etag"]
    propose = _events(after.content)["propose_kpis"]
    assert str(propose["STATUS"]) == "CANCELLED"
    assert "Done" in str(propose["SUMMARY"]) and "ส่งแล้ว" in str(propose["SUMMARY"])
    assert int(propose["SEQUENCE"]) >= int(_events(before.content)["propose_kpis"]["SEQUENCE"])
    assert str(_events(after.content)["sar6"]["STATUS"]) == "CONFIRMED"


def test_conditional_and_head_requests(site: Site) -> None:
    path = site.issue("TH-52")
    first = _fetch(site, path)
    again = _fetch(site, path, **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert _fetch(site, path, **{"If-None-Match": '"something else"'}).status_code == 200
    with site.client() as client:
        head = client.head(path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == first.headers["etag"]


def test_revoked_wrong_and_foreign_secrets_get_the_same_404_and_are_logged(site: Site) -> None:
    path = site.issue("TH-53")
    other = site.issue("TH-58")
    secret = LINK.match(path).group(2)  # type: ignore[union-attr]
    assert _fetch(site, path).status_code == 200
    logged = len(site.log())

    wrong = _fetch(site, path.replace(secret, secret[::-1]))
    unknown_org = _fetch(site, f"/ical/{secret}/TH-99.ics")
    foreign = _fetch(site, path.replace("TH-53", "TH-58"))  # TH-53's secret, TH-58's name
    malformed = _fetch(site, "/ical/short/TH-53.ics")
    for refused in (wrong, unknown_org, foreign, malformed):
        assert refused.status_code == 404
        assert refused.content == wrong.content and "calendar" not in refused.headers.get(
            "content-type", ""
        )
    assert _fetch(site, other).status_code == 200  # TH-58's own link still opens its feed

    revoked = site.cli("ical", "revoke", "TH-53")
    assert revoked.code == 0, revoked.err
    gone = _fetch(site, path)
    assert gone.status_code == 404 and gone.content == wrong.content
    assert _fetch(site, other).status_code == 200

    entries = site.log()[logged:]
    refusals = [e for e in entries if "/ical/" in e["action"]]
    reasons = [e["reason"] for e in refusals]
    assert len(refusals) == 5, entries
    assert any("wrong secret" in r for r in reasons)
    assert any("another organisation" in r for r in reasons)
    assert any("revoked" in r for r in reasons)
    assert any("malformed" in r for r in reasons)
    for entry in entries:  # the secret itself is never written down
        assert secret not in json.dumps(entry, default=str)
        assert secret[::-1] not in json.dumps(entry, default=str)
    with Database(site.url).read() as conn:
        stored = conn.execute(select(FEEDS.c.secret_hash).where(FEEDS.c.org_id == "TH-53")).all()
    assert [row.secret_hash for row in stored] == [hash_secret(secret)]


def test_the_cli_lists_without_secrets_and_refuses_unknown_organisations(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUBRONG_PUBLIC_URL", "https://kpi.opdc.example/")
    issued = site.cli("ical", "issue", "north-upper-1")
    assert issued.code == 0, issued.err
    url = issued.out.splitlines()[-1]
    assert url.startswith("https://kpi.opdc.example/ical/") and url.endswith("/north-upper-1.ics")
    secret = url.split("/")[-2]
    for args in (("ical", "issue", "TH-99"), ("ical", "issue", "TH-50", "--cycle", "2999")):
        refused = site.cli(*args)
        assert refused.code == 2 and refused.out == "", refused
        assert refused.err.startswith("rubrong: ") and len(refused.err.splitlines()) == 1
    listed = site.cli("ical", "list", "--json")
    assert listed.code == 0, listed.err
    assert secret not in listed.out and hash_secret(secret) not in listed.out
    rows = [r for r in listed.json() if r["organisation"] == "north-upper-1"]
    assert rows and rows[-1]["active"] is True and rows[-1]["revoked"] is None
    assert set(rows[-1]) >= {"organisation", "created", "revoked"}
    replaced = site.cli("ical", "issue", "north-upper-1", "--replace")
    assert replaced.code == 0, replaced.err
    rows = [
        r for r in site.cli("ical", "list", "--json").json() if r["organisation"] == "north-upper-1"
    ]
    assert [r["active"] for r in rows] == [False, True]
    assert _fetch(site, url.removeprefix("https://kpi.opdc.example")).status_code == 404
    text = site.cli("ical", "list")
    assert text.code == 0 and "north-upper-1" in text.out and secret not in text.out


@contextlib.contextmanager
def _signed_in(site: Site, name: str) -> Iterator[httpx.Client]:
    with site.client() as client:
        assert password_signin(client, name, PASSWORD).status_code == 303
        yield client


def test_the_agreement_page_issues_a_link_for_its_own_organisation(site: Site) -> None:
    with _signed_in(site, "p50") as own, _signed_in(site, "p51") as stranger:
        page = own.get("/agreements/TH-50")
        assert page.status_code == 200 and 'id="ical-feed"' in page.text
        csrf = CSRF.search(page.text)
        assert csrf is not None
        assert own.post("/agreements/TH-50/ical", data={}).status_code == 403  # no CSRF token
        made = own.post("/agreements/TH-50/ical", data={"csrf_token": csrf.group(1)})
        assert made.status_code == 200, made.text
        assert "no-store" in made.headers["cache-control"]
        found = re.search(r'id="ical-url" value="([^"]+)"', made.text)
        assert found is not None
        url = found.group(1)
        assert url.startswith(site.base) and url.endswith("/TH-50.ics")
        assert _fetch(site, url.removeprefix(site.base)).status_code == 200
        again = own.get("/agreements/TH-50")
        assert url.split("/")[-2] not in again.text  # shown once
        assert 'data-active="' in again.text

        other = stranger.get("/agreements/TH-50")
        assert other.status_code == 200 and 'id="ical-feed"' not in other.text
        token = CSRF.search(other.text)
        assert token is not None
        logged = len(site.log())
        refused = stranger.post("/agreements/TH-50/ical", data={"csrf_token": token.group(1)})
        assert refused.status_code == 403
        assert any("only admin or the organisation" in e["reason"] for e in site.log()[logged:])
    with _signed_in(site, "admin") as admin:
        page = admin.get("/agreements/TH-51")
        assert 'id="ical-feed"' in page.text
        csrf = CSRF.search(page.text)
        assert csrf is not None
        made = admin.post(
            "/agreements/TH-51/ical", data={"csrf_token": csrf.group(1), "replace": "yes"}
        )
        assert made.status_code == 200, made.text
    rows = [r for r in site.cli("ical", "list", "--json").json() if r["organisation"] == "TH-51"]
    assert [r["active"] for r in rows][-1] is True and not any(r["active"] for r in rows[:-1])


def test_a_moved_deadline_moves_the_same_event(fresh: Site, tmp_path: Path) -> None:
    path = fresh.issue("TH-50")
    before = _events(_fetch(fresh, path).content)["sar6"]
    assert before.decoded("DTSTART") == dt.date(2011, 4, 30)
    text = CYCLE_2554.read_text(encoding="utf-8")
    assert text.count('due = "2011-04-30"') == 1
    moved = tmp_path / "moved.toml"
    moved.write_text(text.replace('due = "2011-04-30"', 'due = "2011-05-20"'), encoding="utf-8")
    applied = fresh.cli("load", str(moved), "--apply-changes")
    assert applied.code == 0, applied.err
    after = _events(_fetch(fresh, path).content)["sar6"]
    assert str(after["UID"]) == str(before["UID"]) == "2554.TH-50.sar6@rubrong.invalid"
    assert after.decoded("DTSTART") == dt.date(2011, 5, 20)
    assert after.decoded("DTEND") == dt.date(2011, 5, 21)
    assert "20 พฤษภาคม 2554" in str(after["DESCRIPTION"])
    assert int(after["SEQUENCE"]) >= int(before["SEQUENCE"])
