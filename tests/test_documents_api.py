"""Documents over the API, on both backends: a multipart upload with the event, the download
endpoint and who may read it, bad and oversized uploads, the form in the OpenAPI document."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import kpi_set, pg_url
from tests.support.documents import ELF, PASSWD, pdf_bytes
from tests.support.served import Api, prepare, serve
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.web import create_app

START = parse_instant("2010-09-01T10:00")
ROLES = {
    "admin": "admin",
    "auditor": "auditor",
    "evaluator": "evaluator",
    "committee": "committee",
    "p50": "province:TH-50",
    "p51": "province:TH-51",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app on each backend, TH-50 and TH-51 signed, documents in a temporary store."""
    base = tmp_path_factory.mktemp("docs-api")
    url = f"sqlite:///{base / 'rubrong.db'}" if request.param == "sqlite" else pg_url()
    old = os.environ.get("RUBRONG_DOCUMENTS")
    os.environ["RUBRONG_DOCUMENTS"] = str(base / "store")
    clock = VirtualClock(START)
    tokens = prepare(url, clock, ROLES)
    try:
        with (
            serve(create_app(url, clock)) as root,
            httpx.Client(base_url=root, timeout=60) as client,
        ):
            served = Api(root, url, clock, tokens, client)
            for org in ("TH-50", "TH-51"):
                for body, who in (
                    ({"event": "propose_kpis", "data": kpi_set()}, f"p{org[3:]}"),
                    ({"event": "agree"}, "committee"),
                    ({"event": "sign"}, "admin"),
                ):
                    answer = served.fire(org, body, who)
                    assert answer.status_code == 200, answer.text
            yield served
    finally:
        if old is None:
            del os.environ["RUBRONG_DOCUMENTS"]
        else:
            os.environ["RUBRONG_DOCUMENTS"] = old


def _upload(api: Api, org: str, who: str, event: Any, content: bytes, name: str) -> httpx.Response:
    text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
    return api.client.post(
        f"/api/v1/agreements/{org}/events",
        data={"event": text},
        files={"document": (name, content, "application/pdf")},
        headers=api.headers(who),
    )


def _entries(api: Api) -> int:
    return len(api.get("/api/v1/history").json())


def test_an_uploaded_document_is_recorded_and_readable_by_the_right_roles(api: Api) -> None:
    content = pdf_bytes("TH-50 SAR 6")
    digest = hashlib.sha256(content).hexdigest()
    event = {"event": "submit_sar6", "data": {"card": [{"kpi": "2.1", "result": 81}]}}
    answer = _upload(api, "TH-50", "p50", event, content, "../SAR 6 เชียงใหม่.pdf")
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "sar6_submitted"
    entry = api.get("/api/v1/agreements/TH-50/history").json()[-1]
    assert entry["data"]["document"] == {
        "sha256": digest, "name": "SAR 6 เชียงใหม่.pdf", "size": len(content), "type": "pdf",
    }  # fmt: skip
    assert entry["data"]["card"] == [{"kpi": "2.1", "result": 81}]
    path = f"/api/v1/documents/{digest}"
    for who in ("admin", "auditor", "evaluator", "p50"):
        got = api.get(path, who)
        assert got.status_code == 200, (who, got.text)
        assert got.content == content
        assert got.headers["content-type"] == "application/pdf"
        assert "attachment" in got.headers["content-disposition"]
    assert api.get(path, "p51").status_code == 404
    assert api.get(path, "committee").status_code == 403
    assert api.get(path, None).status_code == 401
    assert api.get(f"/api/v1/documents/{'0' * 64}", "admin").status_code == 404
    assert api.get("/api/v1/documents/..%2F..%2Fetc%2Fpasswd", "admin").status_code == 404
    # Another province quoting the hash gains nothing: it is not in its own history.
    quoted = {"event": "submit_sar6", "data": {"document": {"sha256": digest}}}
    stolen = api.fire("TH-51", quoted, "p51")
    assert stolen.status_code == 422, stolen.text
    assert api.get(path, "p51").status_code == 404
    assert api.get("/api/v1/verify").json()["ok"] is True


def test_bad_uploads_are_refused_and_nothing_is_written(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _entries(api)
    submit = {"event": "submit_sar6"}
    checks: list[tuple[httpx.Response, int]] = [
        (_upload(api, "TH-51", "p51", submit, ELF, "report.pdf"), 422),
        (_upload(api, "TH-51", "p51", submit, b"", "report.pdf"), 422),
        (_upload(api, "TH-51", "p51", {"event": "publish"}, pdf_bytes(), "r.pdf"), 422),
        (_upload(api, "TH-51", "p51", "{not json", pdf_bytes(), "r.pdf"), 422),
        (_upload(api, "TH-51", "p50", submit, ELF, "r.pdf"), 403),  # authorisation first
        (api.fire("TH-51", {"event": "submit_sar6", "data": {"document": PASSWD}}, "p51"), 422),
        (api.client.post(
            "/api/v1/agreements/TH-51/events",
            files={"document": ("r.pdf", pdf_bytes(), "application/pdf")},
            headers=api.headers("p51"),
        ), 422),
    ]  # fmt: skip
    monkeypatch.setenv("RUBRONG_MAX_DOCUMENT_BYTES", "2000")
    checks.append((_upload(api, "TH-51", "p51", submit, pdf_bytes("x" * 3000), "r.pdf"), 413))
    big = b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024)  # past the whole multipart body limit
    checks.append((_upload(api, "TH-51", "p51", submit, big, "r.pdf"), 413))
    for answer, status in checks:
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert _entries(api) == before
    assert api.get("/api/v1/agreements/TH-51").json()["state"] == "signed"


def test_the_multipart_form_is_in_the_openapi_document(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/agreements/{agreement}/events"]["post"]["requestBody"]
    form = body["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["document"]["format"] == "binary"
    assert "application/json" in body["content"]
    assert "/api/v1/documents/{sha256}" in spec["paths"]
