"""Helpers for the forms tests: a signed-in browser-like httpx client, and a prepared year."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.conftest import kpi_set
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.usecases.fire import FireRequest, fire

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ROLES = {
    "opdc": "admin",
    "auditor": "auditor",
    "committee": "committee",
    "evaluator": "evaluator",
    "th50": "province:TH-50",
    "th58": "province:TH-58",
}
# A small valid PDF (one empty page).
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def signed_in(base: str, token: str) -> httpx.Client:
    """A client with a dashboard session, signed in with an API token through /signin."""
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
    page = client.get("/signin")
    match = CSRF.search(page.text)
    assert match, page.text[:500]
    answer = client.post("/signin", data={"token": token, "csrf_token": match.group(1)})
    assert answer.status_code == 303, answer.text[:500]
    return client


def csrf_of(client: httpx.Client, path: str) -> str:
    """The CSRF token a page's forms carry."""
    page = client.get(path)
    match = CSRF.search(page.text)
    assert match, f"{path}: {page.status_code} {page.text[:300]}"
    return match.group(1)


def signed_th50(url: str, clock: VirtualClock) -> None:
    """TH-50 proposes (approved KPIs), is agreed and signed; the clock ends on 2011-04-01."""
    db = Database(url)
    steps: list[tuple[str, str, str, dict[str, Any] | None]] = [
        ("2010-09-10T10:00", "propose_kpis", "province:TH-50", kpi_set()),
        ("2010-09-20T10:00", "agree", "committee", None),
        ("2010-11-26T10:00", "sign", "admin", None),
    ]
    for when, event, role, data in steps:
        clock.set(parse_instant(when))
        fire(db, clock, FireRequest("TH-50", event, role, data=data))
    clock.set(parse_instant("2011-04-01T10:00"))
    db.dispose()


CARD = [
    {"kpi": "1.1", "result": 72.5, "level": 3, "note": "ตามแผน", "evidence": "doc-1"},
    {"kpi": "2.1", "result": 81},
]
