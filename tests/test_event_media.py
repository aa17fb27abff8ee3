"""Events are JSON (or multipart with a document): any other body is 415, on both backends.

``workflow.web.content.event_body_kind`` is the one place that decides; here the real server is
asked with every other media type, none at all and an empty one, and the history, the
agreement's version and the chain are checked unchanged after each refusal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import kpi_set, pg_url
from tests.support.served import Api, prepare, serve
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.web import create_app
from workflow.web.content import media_type

NOT_JSON = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/problem+json",
    "text/json",
    "application/jsonx",
    "",
    None,
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app served with cycle_2554 loaded, an admin, an auditor and TH-50's own account."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('media') / 'rubrong.db'}"
    else:
        url = pg_url()
    clock = VirtualClock(parse_instant("2010-09-01T10:00"))
    tokens = prepare(url, clock, {"admin": "admin", "auditor": "auditor", "p50": "province:TH-50"})
    with serve(create_app(url, clock)) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield Api(base, url, clock, tokens, client)


def _post(api: Api, body: bytes, content_type: str | None, who: str | None) -> httpx.Response:
    headers = api.headers(who)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return api.client.post("/api/v1/agreements/TH-50/events", content=body, headers=headers)


BODY = json.dumps({"event": "propose_kpis", "data": kpi_set()}).encode()


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_a_body_that_is_not_json_is_415_and_nothing_is_written(
    api: Api, content_type: str | None
) -> None:
    before = api.snapshot("TH-50")
    response = _post(api, BODY, content_type, "p50")
    assert response.request.headers.get("content-type") == content_type
    assert response.status_code == 415, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 415 and problem["title"] == "Unsupported media type"
    assert "unsupported media type" in problem["detail"]
    assert "application/json" in problem["detail"]
    assert api.snapshot("TH-50") == before
    assert _post(api, BODY, content_type, None).status_code == 401  # who asks is settled first


def test_json_is_accepted_however_it_is_spelled(api: Api) -> None:
    response = _post(api, BODY, "Application/JSON ; charset=UTF-8", "p50")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "proposed"


def test_the_openapi_document_lists_415_for_events(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    responses = spec["paths"]["/api/v1/agreements/{agreement}/events"]["post"]["responses"]
    assert "application/problem+json" in responses["415"]["content"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", "application/json"),
        (" Application/JSON; charset=utf-8", "application/json"),
        ("multipart/form-data; boundary=x", "multipart/form-data"),
        ("", ""),
        (None, ""),
    ],
)
def test_media_type_is_the_bare_lower_case_type(header: str | None, expected: str) -> None:
    assert media_type(header) == expected
