"""KPIs in the agreement: the approved-list rule, negotiation, change requests, versions."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Cli, kpi_set


def _data(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


def _propose(cli: Cli, *, approved: bool) -> None:
    result = cli(
        "fire",
        "TH-50",
        "propose_kpis",
        "--as",
        "province:TH-50",
        "--at",
        "2010-09-10",
        "--data",
        _data(kpi_set(approved=approved)),
    )
    assert result.code == 0, result.err


def _signed(cli: Cli) -> None:
    _propose(cli, approved=True)
    assert cli("fire", "TH-50", "agree", "--as", "admin", "--at", "2010-09-20").code == 0
    assert cli("fire", "TH-50", "sign", "--as", "admin", "--at", "2010-11-20").code == 0


def test_approved_kpis_go_straight_to_agreed_and_cannot_be_negotiated(loaded: Cli) -> None:
    _propose(loaded, approved=True)
    refused = loaded("fire", "TH-50", "start_negotiation", "--as", "admin", "--at", "2010-09-15")
    assert refused.code == 3
    assert "approved list" in refused.err
    agreed = loaded("fire", "TH-50", "agree", "--as", "committee", "--at", "2010-09-16", "--json")
    assert agreed.code == 0 and agreed.json()["state"] == "agreed"


def test_an_off_list_kpi_needs_negotiation_and_the_negotiated_set_is_recorded(
    loaded: Cli,
) -> None:
    _propose(loaded, approved=False)
    refused = loaded("fire", "TH-50", "agree", "--as", "admin", "--at", "2010-09-15")
    assert refused.code == 3
    assert "9.9" in refused.err and "start_negotiation" in refused.err
    assert (
        loaded("fire", "TH-50", "start_negotiation", "--as", "admin", "--at", "2010-09-27").code
        == 0
    )
    negotiated = kpi_set(approved=False)
    negotiated["kpis"][0]["levels"] = [62, 66, 70, 74, 78]
    agreed = loaded(
        "fire",
        "TH-50",
        "agree",
        "--as",
        "committee",
        "--at",
        "2010-09-28",
        "--data",
        _data(negotiated),
        "--json",
    )
    assert agreed.code == 0, agreed.err
    assert agreed.json()["state"] == "agreed"
    history = loaded("history", "TH-50", "--json").json()
    assert [entry["event"] for entry in history] == ["propose_kpis", "start_negotiation", "agree"]
    assert history[-1]["data"]["kpis"][0]["levels"] == [62, 66, 70, 74, 78]
    versions = loaded("kpis", "TH-50", "--json").json()
    assert [(v["version"], v["source_event"], v["current"]) for v in versions] == [
        (1, "propose_kpis", False),
        (2, "agree", True),
    ]
    assert versions[1]["kpis"][0]["levels"] == [62, 66, 70, 74, 78]


def test_a_bad_kpi_set_is_refused_as_bad_data_with_every_problem(loaded: Cli) -> None:
    bad = kpi_set()
    bad["kpis"][0]["weight"] = 45  # dimension 1 no longer adds up to 50
    bad["kpis"][1]["levels"] = [70, 75, 74, 85, 90]  # not increasing
    result = loaded("fire", "TH-50", "propose_kpis", "--as", "province:TH-50", "--data", _data(bad))
    assert result.code == 2
    assert "1.1" in result.err or "dimension 1" in result.err
    assert "2.1" in result.err
    assert loaded("status", "TH-50", "--json").json()[0]["state"] == "drafted"


def test_change_requests_until_the_cutoff_with_versions(loaded: Cli) -> None:
    _signed(loaded)
    changed = kpi_set()
    changed["kpis"][0]["levels"] = [55, 60, 65, 70, 75]
    request = {"reason": "budget", "explanation": "งบประมาณไม่ได้รับจัดสรร", **changed}
    ok = loaded(
        "fire",
        "TH-50",
        "request_change",
        "--as",
        "province:TH-50",
        "--at",
        "2011-03-31T16:00",
        "--data",
        _data(request),
        "--json",
    )
    assert ok.code == 0, ok.err
    assert ok.json()["change_request_open"] is True
    second = loaded(
        "fire",
        "TH-50",
        "request_change",
        "--as",
        "province:TH-50",
        "--at",
        "2011-03-31T17:00",
        "--data",
        _data(request),
    )
    assert second.code == 3 and "already open" in second.err
    # Approving is allowed after the cutoff.
    approved = loaded("fire", "TH-50", "approve_change", "--as", "admin", "--at", "2011-04-05")
    assert approved.code == 0, approved.err
    versions = loaded("kpis", "TH-50", "--json").json()
    assert [v["source_event"] for v in versions] == ["propose_kpis", "approve_change"]
    assert versions[-1]["kpis"][0]["levels"] == [55, 60, 65, 70, 75]
    assert versions[0]["kpis"][0]["levels"] == [60, 65, 70, 75, 80]  # the old one stays
    assert loaded("fire", "TH-50", "reject_change", "--as", "admin").code == 3


def test_a_change_request_on_1_april_is_refused_naming_the_deadline(loaded: Cli) -> None:
    _signed(loaded)
    request = {"reason": "external", "explanation": "อุทกภัย", **kpi_set()}
    late = loaded(
        "fire",
        "TH-50",
        "request_change",
        "--as",
        "province:TH-50",
        "--at",
        "2011-04-01",
        "--data",
        _data(request),
    )
    assert late.code == 3
    assert "2011-03-31" in late.err
    assert loaded("history", "TH-50", "--json").json()[-1]["event"] == "sign"


def test_a_change_request_with_another_reason_is_bad_data(loaded: Cli) -> None:
    _signed(loaded)
    for reason in ("politics", None):
        request: dict[str, Any] = {"explanation": "เหตุผลอื่น", **kpi_set()}
        if reason is not None:
            request["reason"] = reason
        result = loaded(
            "fire",
            "TH-50",
            "request_change",
            "--as",
            "province:TH-50",
            "--at",
            "2011-03-01",
            "--data",
            _data(request),
        )
        assert result.code == 2, result.err
        assert "external" in result.err and "budget" in result.err
    missing_explanation = {"reason": "budget", **kpi_set()}
    result = loaded(
        "fire",
        "TH-50",
        "request_change",
        "--as",
        "province:TH-50",
        "--at",
        "2011-03-01",
        "--data",
        _data(missing_explanation),
    )
    assert result.code == 2 and "explanation" in result.err


def test_reject_keeps_the_old_set(loaded: Cli) -> None:
    _signed(loaded)
    changed = kpi_set()
    changed["kpis"][0]["levels"] = [1, 2, 3, 4, 5]
    request = {"reason": "external", "explanation": "อุทกภัย", **changed}
    assert (
        loaded(
            "fire",
            "TH-50",
            "request_change",
            "--as",
            "province:TH-50",
            "--at",
            "2011-03-10",
            "--data",
            _data(request),
        ).code
        == 0
    )
    assert loaded("fire", "TH-50", "reject_change", "--as", "admin", "--at", "2011-03-12").code == 0
    versions = loaded("kpis", "TH-50", "--json").json()
    assert len(versions) == 1 and versions[0]["current"] is True
    assert loaded("status", "TH-50", "--json").json()[0]["change_request_open"] is False
