"""The dashboard's forms over raw HTTP (httpx against the served app), on both backends.

e-SAR Card drafts (form and API: save, load, overwrite, stale after a new KPI version), the
submit (the event fired with the card as data and the document's hash; the chain verifies),
field-level errors that keep nothing, documents that are refused (disguised, too large, a
path in the name), another province's drafts and documents (404, logged), CSRF (403), the KPI
and change request forms, the one-click buttons and OPDC's side-by-side view.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import kpi_set
from tests.support.served import prepare, serve
from tests.support.webforms import CARD, PDF, ROLES, csrf_of, signed_in, signed_th50
from workflow.rules.clock import VirtualClock
from workflow.rules.timeutil import parse_instant
from workflow.web import create_app

SAR6 = "/agreements/TH-50/esar/sar6"


@dataclass
class Site:
    """The served app, its tokens, and one signed-in client per person."""

    base: str
    tokens: dict[str, str]
    clock: VirtualClock
    api: httpx.Client

    def person(self, who: str) -> httpx.Client:
        return signed_in(self.base, self.tokens[who])

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def history(self, agreement: str = "TH-50") -> list[dict[str, object]]:
        answer = self.api.get(
            f"/api/v1/agreements/{agreement}/history", headers=self.bearer("auditor")
        )
        assert answer.status_code == 200, answer.text
        return list(answer.json())

    def refusals(self, actor: str) -> list[dict[str, object]]:
        """The security log's entries by ``actor`` about TH-50 (sign-ins are logged too)."""
        log = self.api.get("/api/v1/security-log", headers=self.bearer("opdc")).json()
        return [e for e in log if e["actor"] == actor and e["agreement"] == "TH-50"]


@pytest.fixture
def site(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("RUBRONG_DOCUMENTS", str(tmp_path / "documents"))
    clock = VirtualClock(parse_instant("2010-08-01"))
    tokens = prepare(db_url, clock, ROLES)
    signed_th50(db_url, clock)
    with serve(create_app(db_url, clock)) as base, httpx.Client(base_url=base, timeout=60) as api:
        yield Site(base, tokens, clock, api)


def _form(token: str, action: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": token, "action": action, **fields}


def test_draft_save_load_overwrite_through_form_and_api(site: Site) -> None:
    th50 = site.person("th50")
    token = csrf_of(th50, SAR6)
    saved = th50.post(SAR6, data=_form(token, "save", **{"result-1.1": "72.5", "level-1.1": "3"}))
    assert saved.status_code == 303 and saved.headers["location"].endswith("?saved=1")
    page = th50.get(SAR6)
    assert 'id="result-1.1" value="72.5"' in page.text and 'id="saved"' not in page.text
    draft = site.api.get("/api/v1/agreements/TH-50/esar/sar6", headers=site.bearer("th50"))
    assert draft.status_code == 200
    assert draft.json()["card"] == [{"kpi": "1.1", "result": 72.5, "level": 3}]
    assert draft.json()["stale"] is False and draft.json()["updated_by"] == "province:TH-50"
    # Overwrite through the API; the form shows the new values.
    put = site.api.put(
        "/api/v1/agreements/TH-50/esar/sar6", json={"card": CARD}, headers=site.bearer("th50")
    )
    assert put.status_code == 200, put.text
    page = th50.get(SAR6)
    assert 'id="result-2.1" value="81"' in page.text and "ตามแผน" in page.text
    assert site.history()[-1]["event"] == "sign"  # drafts are not history


def test_stale_draft_is_shown_with_a_warning(site: Site) -> None:
    site.clock.set(parse_instant("2011-03-01T10:00"))
    site.api.put(
        "/api/v1/agreements/TH-50/esar/sar6", json={"card": CARD}, headers=site.bearer("th50")
    )
    changed = kpi_set()
    changed["kpis"][0]["id"] = "1.2"
    data = {"reason": "budget", "explanation": "งบ", **changed}
    request = {"event": "request_change", "data": data}
    answer = site.api.post(
        "/api/v1/agreements/TH-50/events", json=request, headers=site.bearer("th50")
    )
    assert answer.status_code == 200, answer.text
    approve = site.api.post(
        "/api/v1/agreements/TH-50/events",
        json={"event": "approve_change"},
        headers=site.bearer("opdc"),
    )
    assert approve.status_code == 200, approve.text
    page = site.person("th50").get(SAR6)
    assert 'id="stale-draft"' in page.text and "1.1 (72.5)" in page.text
    api = site.api.get("/api/v1/agreements/TH-50/esar/sar6", headers=site.bearer("opdc"))
    assert api.json()["stale"] is True and api.json()["current_kpi_version"] == 2


def test_submit_fires_the_event_with_the_card_and_the_document_hash(site: Site) -> None:
    th50 = site.person("th50")
    token = csrf_of(th50, SAR6)
    fields = {"result-1.1": "72.5", "level-1.1": "3", "note-1.1": "ตามแผน", "result-2.1": "81"}
    answer = th50.post(
        SAR6,
        data=_form(token, "submit", **fields),
        files={"document": ("รายงาน.pdf", PDF, "application/pdf")},
    )
    assert answer.status_code == 303, answer.text[:2000]
    assert answer.headers["location"] == "/agreements/TH-50?done=submit_sar6"
    entry = site.history()[-1]
    assert entry["event"] == "submit_sar6" and entry["actor"] == "province:TH-50"
    data = entry["data"]
    assert isinstance(data, dict)
    assert data["card"] == [
        {"kpi": "1.1", "result": 72.5, "level": 3, "note": "ตามแผน"},
        {"kpi": "2.1", "result": 81},
    ]

    assert data["document"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert data["document"]["name"] == "รายงาน.pdf" and data["document"]["size"] == len(PDF)
    verify = site.api.get("/api/v1/verify", headers=site.bearer("auditor")).json()
    assert verify["ok"] is True
    draft = site.api.get("/api/v1/agreements/TH-50/esar/sar6", headers=site.bearer("th50"))
    assert draft.json()["submitted_seq"] == entry["seq"]
    # Downloads: the own province and OPDC read it; another province is told 404, logged.
    path = f"/agreements/TH-50/documents/{data['document']['sha256']}"
    assert th50.get(path).content == PDF
    assert site.person("opdc").get(path).headers["content-type"] == "application/pdf"
    th58 = site.person("th58")
    before = len(site.refusals("province:TH-58"))
    assert th58.get(path).status_code == 404
    assert len(site.refusals("province:TH-58")) == before + 1
    # OPDC's side-by-side view lists the submitted card.
    table = site.person("opdc").get("/esar/sar6")
    assert table.status_code == 200 and f"#{entry['seq']}" in table.text
    assert site.person("th58").get("/esar/sar6").status_code == 403


def test_a_draft_document_is_sent_with_the_submit(site: Site) -> None:
    th50 = site.person("th50")
    token = csrf_of(th50, SAR6)
    saved = th50.post(
        SAR6,
        data=_form(token, "save", **{"result-1.1": "70"}),
        files={"document": ("draft.pdf", PDF, "application/pdf")},
    )
    assert saved.status_code == 303
    submitted = th50.post(SAR6, data=_form(token, "submit", **{"result-1.1": "70"}))
    assert submitted.status_code == 303, submitted.text[:2000]
    document = site.history()[-1]["data"]["document"]  # type: ignore[index]
    assert document["name"] == "draft.pdf" and document["type"] == "pdf"


def test_field_errors_keep_the_typed_values_and_nothing(site: Site) -> None:
    th50 = site.person("th50")
    token = csrf_of(th50, SAR6)
    before = site.history()
    for action in ("save", "submit"):
        fields = {"result-1.1": "เจ็ดสิบ", "level-2.1": "7", "result-2.1": "80"}
        answer = th50.post(SAR6, data=_form(token, action, **fields))
        assert answer.status_code == 422, action
        assert 'id="err-result-1.1"' in answer.text and "ต้องเป็นตัวเลข" in answer.text
        assert "must be a finite number" in answer.text
        assert 'id="err-level-2.1"' in answer.text and "1–5" in answer.text
        assert 'value="เจ็ดสิบ"' in answer.text and 'data-code="2"' in answer.text
    assert site.history() == before
    missing = site.api.get("/api/v1/agreements/TH-50/esar/sar6", headers=site.bearer("th50"))
    assert missing.status_code == 404
    bad = site.api.put(
        "/api/v1/agreements/TH-50/esar/sar6",
        json={"card": [{"kpi": "9.9", "result": 1}, {"kpi": "1.1", "result": "x"}]},
        headers=site.bearer("th50"),
    )
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"card[0].kpi", "card[1].result"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("report.pdf", b"MZ\x90\x00" + b"\x00" * 200, "judged by its content"),
        ("../../x.pdf", PDF, "plain file name"),
        ("big.pdf", PDF + b"%" * 4096, "limit"),
    ],
)
def test_refused_documents_write_nothing(
    site: Site, name: str, content: bytes, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUBRONG_MAX_DOCUMENT_BYTES", "2048")
    th50 = site.person("th50")
    token = csrf_of(th50, SAR6)
    before = site.history()
    for action in ("save", "submit"):
        answer = th50.post(
            SAR6,
            data=_form(token, action, **{"result-1.1": "70"}),
            files={"document": (name, content, "application/pdf")},
        )
        assert answer.status_code in (413, 422), answer.text[:500]
        assert 'id="err-document"' in answer.text and message in answer.text
    assert site.history() == before
    draft = site.api.get("/api/v1/agreements/TH-50/esar/sar6", headers=site.bearer("th50"))
    assert draft.status_code == 404


def test_another_province_cannot_read_or_write_the_drafts(site: Site) -> None:
    site.api.put(
        "/api/v1/agreements/TH-50/esar/sar6", json={"card": CARD}, headers=site.bearer("th50")
    )
    th58 = site.person("th58")
    assert th58.get(SAR6).status_code == 404
    api = site.api.get("/api/v1/agreements/TH-50/esar/sar6", headers=site.bearer("th58"))
    assert api.status_code == 404
    put = site.api.put(
        "/api/v1/agreements/TH-50/esar/sar6", json={"card": []}, headers=site.bearer("th58")
    )
    assert put.status_code == 404
    token = csrf_of(th58, "/agreements/TH-58/esar/sar6")
    post = th58.post(SAR6, data=_form(token, "save", **{"result-1.1": "1"}))
    assert post.status_code == 404
    committee = site.api.get("/api/v1/agreements/TH-50/esar/sar6", headers=site.bearer("committee"))
    assert committee.status_code == 403
    assert len(site.refusals("province:TH-58")) == 4
    assert len(site.refusals("committee")) == 1
    # OPDC reads it (read-only form); admin may not write it.
    assert 'id="read-only"' in site.person("opdc").get(SAR6).text
    card = site.api.get("/api/v1/agreements/TH-50/esar/sar6", headers=site.bearer("th50"))
    assert card.json()["card"] == CARD


def test_csrf_missing_or_wrong_is_403_and_changes_nothing(site: Site) -> None:
    th50 = site.person("th50")
    before = site.history()
    no_token = th50.post(SAR6, data={"action": "submit", "result-1.1": "70"})
    assert no_token.status_code == 403
    wrong = th50.post("/agreements/TH-50/fire", data={"event": "publish", "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    kpis = th50.post("/agreements/TH-50/change-request", data={"reason": "budget"})
    assert kpis.status_code == 403
    assert site.history() == before
    assert (
        site.api.get(
            SAR6.replace("/agreements", "/api/v1/agreements"), headers=site.bearer("th50")
        ).status_code
        == 404
    )


def test_one_click_sign_and_refusals_explained(site: Site) -> None:
    opdc = site.person("opdc")
    # TH-58: propose through the KPI form (first with a bad weight), agree, sign by button.
    th58 = site.person("th58")
    site.clock.set(parse_instant("2010-09-10T10:00"))
    path = "/agreements/TH-58/kpis/propose_kpis"
    token = csrf_of(th58, path)
    rows = _kpi_rows(kpi_set())
    bad = {**rows, "weight-0": "55", "level3-1": "60"}
    answer = th58.post(path, data={"csrf_token": token, **bad})
    assert answer.status_code == 422
    assert 'id="err-kpi-0"' not in answer.text or "weight" in answer.text
    assert 'id="err-kpi-1"' in answer.text and "strictly increasing" in answer.text
    assert "weights sum to 105" in answer.text and 'value="55"' in answer.text
    assert site.history("TH-58") == []
    good = th58.post(path, data={"csrf_token": token, **rows})
    assert good.status_code == 303, good.text[:2000]
    assert site.history("TH-58")[-1]["data"] == kpi_set()
    site.clock.set(parse_instant("2010-09-20T10:00"))
    token = csrf_of(opdc, "/agreements/TH-58")
    page = opdc.get("/agreements/TH-58").text
    assert 'id="action-agree"' in page and 'id="action-sign"' not in page
    agreed = opdc.post("/agreements/TH-58/fire", data={"csrf_token": token, "event": "agree"})
    assert agreed.status_code == 303 and agreed.headers["location"].endswith("done=agree")
    signed = opdc.post("/agreements/TH-58/fire", data={"csrf_token": token, "event": "sign"})
    assert signed.headers["location"].endswith("done=sign")
    again = opdc.post("/agreements/TH-58/fire", data={"csrf_token": token, "event": "sign"})
    assert "refused=3" in again.headers["location"]
    assert "allowed+events" in again.headers["location"]
    # The province may not sign: 4, recorded in the security log by the engine.
    token58 = csrf_of(th58, "/agreements/TH-58")
    denied = th58.post("/agreements/TH-58/fire", data={"csrf_token": token58, "event": "sign"})
    assert "refused=4" in denied.headers["location"]
    assert [e["event"] for e in site.history("TH-58")] == ["propose_kpis", "agree", "sign"]


def test_change_request_form_and_its_cutoff(site: Site) -> None:
    th50 = site.person("th50")
    path = "/agreements/TH-50/change-request"
    site.clock.set(parse_instant("2011-03-31T20:00"))
    page = th50.get(path)
    assert 'data-cutoff="2011-03-31"' in page.text and "31 มีนาคม 2554" in page.text
    token = csrf_of(th50, path)
    rows = _kpi_rows(kpi_set())
    fields = {"csrf_token": token, "reason": "external", "explanation": "น้ำท่วม", **rows}
    missing = th50.post(path, data={**fields, "reason": ""})
    assert missing.status_code == 422 and "external" in missing.text
    done = th50.post(path, data=fields)
    assert done.status_code == 303, done.text[:2000]
    data = site.history()[-1]["data"]
    assert data == {"reason": "external", "explanation": "น้ำท่วม", **kpi_set()}
    approve = site.person("opdc")
    token = csrf_of(approve, "/agreements/TH-50")
    assert 'id="action-approve_change"' in approve.get("/agreements/TH-50").text
    rejected = approve.post(
        "/agreements/TH-50/fire", data={"csrf_token": token, "event": "reject_change"}
    )
    assert rejected.headers["location"].endswith("done=reject_change")
    site.clock.set(parse_instant("2011-04-01T00:00"))
    late = th50.post(path, data=fields)
    assert late.status_code == 409
    assert "the deadline for change requests has passed" in late.text


def _kpi_rows(kpis: dict[str, Any]) -> dict[str, str]:
    rows: dict[str, str] = {}
    for index, kpi in enumerate(kpis["kpis"]):
        for name in ("id", "dimension", "name_th", "unit", "direction", "weight", "baseline"):
            rows[f"{name}-{index}"] = str(kpi[name])
        for level, value in enumerate(kpi["levels"], start=1):
            rows[f"level{level}-{index}"] = str(value)
    return rows


def test_evaluate_form_starts_from_the_12_month_card(site: Site) -> None:
    body = {"event": "submit_sar12", "data": {"card": CARD}}
    answer = site.api.post(
        "/api/v1/agreements/TH-50/events", json=body, headers=site.bearer("th50")
    )
    assert answer.status_code == 200, answer.text
    evaluator = site.person("evaluator")
    page = evaluator.get("/agreements/TH-50/evaluate")
    assert 'id="result-1.1" value="72.5"' in page.text and 'id="result-2.1" value="81"' in page.text
    token = csrf_of(evaluator, "/agreements/TH-50/evaluate")
    fields = {"csrf_token": token, "result-1.1": "72.5", "result-2.1": "81", "result-3.1": "8"}
    short = evaluator.post("/agreements/TH-50/evaluate", data=fields)
    assert short.status_code == 422 and "4.1" in short.text
    done = evaluator.post("/agreements/TH-50/evaluate", data={**fields, "result-4.1": "3"})
    assert done.status_code == 303
    assert site.history()[-1]["data"] == {"results": {"1.1": 72.5, "2.1": 81, "3.1": 8, "4.1": 3}}
    assert json.dumps(site.history()[-1]["data"])
