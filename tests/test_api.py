"""The REST API over a real uvicorn server, on SQLite and PostgreSQL (CONTRACT.md "REST API").

One server per backend for the whole module; each test works on its own agreement so that the
tests stay independent. "Nothing written" is checked on the history chain, the agreement's
version and the global verification, never assumed.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.conftest import Cli, kpi_set, pg_url
from tests.support.served import Api, prepare, serve
from workflow.rules.clock import VirtualClock
from workflow.rules.errors import (
    BadInput,
    ConcurrentChange,
    EnvironmentProblem,
    IntegrityFailure,
    NotAllowed,
    NotAuthorised,
)
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.users import add_user
from workflow.web import create_app
from workflow.web.problems import status_for

START = parse_instant("2010-09-01T10:00")
ROLES = {
    "admin": "admin",
    "p50": "province:TH-50",
    "p51": "province:TH-51",
    "p53": "province:TH-53",
    "p58": "province:TH-58",
    "p60": "province:TH-60",
    "auditor": "auditor",
    "committee": "committee",
    "evaluator": "evaluator",
    "revoked": "province:TH-52",
}
READS = [
    "/api/v1/agreements",
    "/api/v1/agreements/TH-50",
    "/api/v1/agreements/TH-50/milestones",
    "/api/v1/agreements/TH-50/history",
    "/api/v1/agreements/TH-50/score",
    "/api/v1/history",
    "/api/v1/outbox",
    "/api/v1/verify",
    "/api/v1/diagram",
    "/api/v1/report",
    "/api/v1/me",
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app served on each backend, with cycle_2554 loaded and a user per role."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'rubrong.db'}"
    else:
        url = pg_url()
    clock = VirtualClock(START)
    tokens = prepare(url, clock, ROLES)
    with serve(create_app(url, clock)) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield Api(base, url, clock, tokens, client)


def assert_problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """A problem+json answer with ``status`` whose detail mentions ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    for word in words:
        assert word in body["detail"], body
    return body


def test_every_read_endpoint_answers_any_valid_token(api: Api, tmp_path: Path) -> None:
    agreements = api.get("/api/v1/agreements").json()
    assert len(agreements) == 93
    row = api.get("/api/v1/agreements/TH-50").json()
    assert {"agreement", "kind", "group", "name_th", "state", "next_due", "overdue"} <= set(row)
    assert row["agreement"] == "TH-50" and row["group"] == "north-upper-1"
    cli = Cli(api.url, tmp_path)
    assert row == cli("status", "TH-50", "--json").json()[0]
    assert (
        api.get("/api/v1/agreements/TH-50/milestones").json()
        == cli("milestones", "TH-50", "--json").json()
    )
    assert api.get("/api/v1/agreements/TH-50/score").json()["agreement"] == "TH-50"
    verify = api.get("/api/v1/verify").json()
    assert verify["ok"] is True and verify == cli("verify", "--json").json()
    diagram = api.get("/api/v1/diagram")
    assert diagram.headers["content-type"].startswith("text/plain")
    assert diagram.text == cli("diagram").out
    assert api.get("/api/v1/me", who="p50").json() == {"name": "p50", "role": "province:TH-50"}
    for who in ("auditor", "p51", "committee", "evaluator", "admin"):
        for path in READS:
            assert api.get(path, who=who).status_code == 200, (who, path)


@pytest.mark.parametrize("path", READS)
def test_no_bad_or_revoked_token_is_401(api: Api, path: str) -> None:
    assert_problem(api.get(path, who=None), 401, "Bearer")
    assert api.get(path, who=None).headers["www-authenticate"].startswith("Bearer")
    assert_problem(api.get(path, who="not-a-token"), 401, "unknown or revoked")
    forged = api.tokens["admin"][:8] + "x" * 35  # right prefix, wrong secret
    assert_problem(api.get(path, who=forged), 401)
    assert_problem(api.get(path, who="revoked"), 401, "revoked")
    scheme = api.client.get(path, headers={"Authorization": f"Basic {api.tokens['admin']}"})
    assert_problem(scheme, 401)


def test_revoking_a_token_takes_effect_at_once(api: Api, tmp_path: Path) -> None:
    db = Database(api.url)
    token = add_user(db, api.clock, "short-lived", "auditor")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/api/v1/agreements/TH-50", headers=headers).status_code == 200
    result = Cli(api.url, tmp_path)("user", "revoke", "short-lived")
    assert result.code == 0, result.err
    assert_problem(api.client.get("/api/v1/agreements/TH-50", headers=headers), 401)
    log = api.get("/api/v1/security-log", who="admin").json()
    assert log[0]["actor"] == f"token {token[:8]}…" and log[0]["action"].startswith("GET ")


def test_users_and_security_log_are_admin_only(api: Api) -> None:
    for path in ("/api/v1/users", "/api/v1/security-log"):
        for who in ("p50", "auditor", "committee", "evaluator"):
            assert_problem(api.get(path, who=who), 403, "only admin")
    users = api.get("/api/v1/users", who="admin").json()
    assert {u["name"] for u in users} >= set(ROLES)
    assert not any(token in json.dumps(users) for token in api.tokens.values())
    assert {u["name"]: u["active"] for u in users}["revoked"] is False
    log = api.get("/api/v1/security-log", who="admin").json()
    assert any(e["action"] == "GET /api/v1/users (user auditor)" for e in log)


def test_own_province_fires_and_gets_the_status_row(api: Api, tmp_path: Path) -> None:
    response = api.fire("TH-50", {"event": "propose_kpis", "data": kpi_set()}, "p50")
    assert response.status_code == 200, response.text
    assert response.json() == Cli(api.url, tmp_path)("status", "TH-50", "--json").json()[0]
    assert response.json()["state"] == "proposed"
    entry = api.get("/api/v1/agreements/TH-50/history").json()[-1]
    assert (entry["event"], entry["actor"], entry["at"]) == (
        "propose_kpis",
        "province:TH-50",
        "2010-09-01T10:00:00+07:00",
    )
    before = api.get("/api/v1/agreements/TH-50/history", params={"as_of": "2010-09-01"}).json()
    assert before == []  # recorded at 10:00, after 00:00 of that day


def test_another_province_is_403_and_nothing_is_written(api: Api) -> None:
    before = api.snapshot("TH-51")
    body = {"event": "propose_kpis", "data": kpi_set()}
    assert_problem(api.fire("TH-51", body, "p50"), 403, "province:TH-50", "TH-51")
    assert api.snapshot("TH-51") == before
    log = api.get("/api/v1/security-log", who="admin").json()
    assert log[0]["agreement"] == "TH-51" and log[0]["action"] == "fire propose_kpis"


@pytest.mark.parametrize("event", ["propose_kpis", "agree", "sign", "evaluate", "waive"])
def test_auditor_writing_is_403_and_nothing_is_written(api: Api, event: str) -> None:
    before = api.snapshot("TH-54")
    assert_problem(api.fire("TH-54", {"event": event, "data": {}}, "auditor"), 403, "auditor")
    assert api.snapshot("TH-54") == before


def test_only_admin_may_set_the_effective_time(api: Api) -> None:
    before = api.snapshot("TH-53")
    body = {"event": "propose_kpis", "data": kpi_set(), "at": "2010-09-01T08:00"}
    assert_problem(api.fire("TH-53", body, "p53"), 403, "only admin may set the effective time")
    assert api.snapshot("TH-53") == before
    waive = {"milestone": "publish", "reason": "ประกาศแล้วทางอื่น"}
    response = api.fire("TH-53", {"event": "waive", "data": waive, "at": "2010-08-30"}, "admin")
    assert response.status_code == 200, response.text
    entry = api.get("/api/v1/agreements/TH-53/history").json()[-1]
    assert (entry["event"], entry["at"]) == ("waive", "2010-08-30T00:00:00+07:00")


def test_not_allowed_now_is_409(api: Api) -> None:
    before = api.snapshot("TH-55")
    body = assert_problem(api.fire("TH-55", {"event": "sign"}, "admin"), 409, "drafted")
    assert body["exit_code"] == 3
    assert api.snapshot("TH-55") == before


def test_racing_writers_one_wins_the_others_get_409(api: Api) -> None:
    body = {"event": "propose_kpis", "data": kpi_set()}
    barrier = threading.Barrier(4)

    def post() -> int:
        with httpx.Client(base_url=api.base, timeout=30) as client:
            barrier.wait()
            return client.post(
                "/api/v1/agreements/TH-60/events", json=body, headers=api.headers("p60")
            ).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(lambda _: post(), range(4)))
    assert codes == [200, 409, 409, 409]
    history = api.get("/api/v1/agreements/TH-60/history").json()
    assert [entry["event"] for entry in history] == ["propose_kpis"]
    assert api.get("/api/v1/verify").json()["ok"] is True


@pytest.mark.parametrize(
    "agreement",
    [
        "TH-50' OR '1'='1",
        "x'; DROP TABLE history;--",
        'TH-50" --',
        "%00",
        "TH-50%0A",
        "..%2F..%2Fetc",
        "ไม่มี",
        "a" * 300,
    ],
)
def test_unknown_or_hostile_agreement_ids_are_404(api: Api, agreement: str) -> None:
    before = api.snapshot("TH-50")
    for path in ("", "/milestones", "/history", "/score"):
        response = api.get(f"/api/v1/agreements/{agreement}{path}")
        assert response.status_code == 404, (agreement, path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert api.fire(agreement, {"event": "sign"}, "admin").status_code == 404
    assert api.snapshot("TH-50") == before
    assert len(api.get("/api/v1/agreements").json()) == 93
    assert api.get("/api/v1/agreements", params={"cycle": "2554' --"}).status_code == 404


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"event": "no_such_event"}', ["unknown event"]),
        (b'{"event": "sign", "data": [1]}', ["data"]),
        (b'{"event": 7}', ["event"]),
        (b'{"event": "sign", "colour": "red"}', ["unknown key"]),
        (b"[]", ["JSON object"]),
        (b'{"event": "sign"', ["not valid JSON"]),
        (b"", ["not valid JSON"]),
        (b'{"event": "sign", "data": {"x": NaN}}', ["not valid JSON"]),
        (b'{"event": "sign", "data": {"x": 1e999}}', ["not valid JSON"]),
        (b'{"event": "\xff\xfe sign"}', ["UTF-8"]),
        (b'{"event": "sign", "data": {"x": "\\ud800"}}', ["surrogate"]),
        (b'{"event": "sign", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", ["JSON"]),
        (b'{"event": "sign", "at": "yesterday"}', ["ISO 8601"]),
        (b'{"event": "sign", "at": "2011-02-30"}', ["ISO 8601"]),
    ],
)
def test_bad_bodies_are_422_and_nothing_is_written(
    api: Api, content: bytes, words: list[str]
) -> None:
    before = api.snapshot("TH-56")
    assert_problem(api.post_raw("TH-56", content, "admin"), 422, *words)
    assert api.snapshot("TH-56") == before


def test_bad_event_data_is_422_after_the_state_checks(api: Api) -> None:
    before = api.snapshot("TH-58")
    body = {"event": "propose_kpis", "data": {"kpis": "many"}}
    assert_problem(api.fire("TH-58", body, "p58"), 422, "KPI")
    assert api.snapshot("TH-58") == before


def test_large_bodies_are_413_before_authentication(api: Api) -> None:
    before = api.snapshot("TH-57")
    ten_mb = b'{"event": "sign", "data": {"pad": "' + b"x" * 10_485_760 + b'"}}'
    for who in (None, "admin"):
        assert_problem(api.post_raw("TH-57", ten_mb, who), 413, "1048576")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bytes are counted as they come
        yield b'{"event": "sign", "data": {"pad": "'
        for _ in range(40):
            yield b"y" * 65_536
        yield b'"}}'

    assert_problem(api.post_raw("TH-57", chunks(), None), 413, "more than 1048576")
    assert_problem(api.post_raw("TH-57", chunks(), "admin"), 413)
    just_under = b'{"event": "sign", "data": {"pad": "' + b"z" * 1_040_000 + b'"}}'
    assert_problem(api.post_raw("TH-57", just_under, "admin"), 409)  # read, then judged
    assert api.snapshot("TH-57") == before


def test_a_declared_length_over_the_limit_is_refused_unread(api: Api) -> None:
    host, port = api.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/agreements/TH-50/events HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{"
        )
        reply = sock.recv(65_536).decode("latin-1")
    assert reply.startswith("HTTP/1.1 413"), reply


def test_history_as_of_and_bad_times(api: Api) -> None:
    assert_problem(api.get("/api/v1/history", params={"as_of": "soon"}), 422, "as_of")
    assert_problem(api.get("/api/v1/agreements/TH-50/history", params={"as_of": "2010-13-45"}), 422)
    everything = api.get("/api/v1/history").json()
    assert api.get("/api/v1/history", params={"as_of": "2000-01-01"}).json() == []
    assert api.get("/api/v1/history", params={"as_of": "2100-01-01"}).json() == everything


def test_openapi_lists_every_contract_endpoint(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [
        ("/api/v1/agreements", "get"),
        ("/api/v1/agreements/{agreement}", "get"),
        ("/api/v1/agreements/{agreement}/milestones", "get"),
        ("/api/v1/agreements/{agreement}/history", "get"),
        ("/api/v1/agreements/{agreement}/events", "post"),
        ("/api/v1/agreements/{agreement}/score", "get"),
        ("/api/v1/history", "get"),
        ("/api/v1/outbox", "get"),
        ("/api/v1/outbox/{key}", "get"),
        ("/api/v1/verify", "get"),
        ("/api/v1/users", "get"),
        ("/api/v1/security-log", "get"),
        ("/api/v1/diagram", "get"),
    ]:
        assert method in paths[path], path
    assert "token" in spec["components"]["securitySchemes"]
    events = paths["/api/v1/agreements/{agreement}/events"]["post"]["responses"]
    assert "application/problem+json" in events["415"]["content"]
    unknown = api.get("/api/v1/nothing-here")
    assert_problem(unknown, 404)


def test_engine_errors_map_to_http_statuses() -> None:
    assert status_for(BadInput("x")) == 422
    assert status_for(NotAllowed("x")) == 409
    assert status_for(NotAuthorised("x")) == 403
    assert status_for(ConcurrentChange("x")) == 409
    assert status_for(IntegrityFailure("x")) == 409
    assert status_for(EnvironmentProblem("x")) == 503


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A server of its own (SQLite) for schemathesis to write into."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'rubrong.db'}"
    clock = VirtualClock(START)
    tokens = prepare(url, clock, {"admin": "admin", "p50": "province:TH-50"})
    with serve(create_app(url, clock)) as base:
        yield base, tokens


@pytest.fixture(scope="module")
def api_schema(fuzzed: tuple[str, dict[str, str]]) -> Any:
    """The served /openapi.json, loaded by schemathesis."""
    base, _tokens = fuzzed
    return schemathesis.openapi.from_url(f"{base}/openapi.json")


def test_schemathesis_finds_no_server_error(
    api_schema: Any, fuzzed: tuple[str, dict[str, str]]
) -> None:
    """Every operation, valid and invalid inputs, as admin, a province and nobody: never a 5xx."""
    base, tokens = fuzzed
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    calls = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=8,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                nonlocal calls
                for who in ("admin", "p50", None):
                    headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
                    case.call_and_validate(
                        base_url=base, headers=headers, checks=[not_a_server_error]
                    )
                    calls += 1

            check()
    assert calls > 100
