"""The dashboard's pages over raw HTTP, on SQLite and PostgreSQL: where each role lands, the
OPDC queue and its filters, an agreement's tasks (Buddhist-Era dates, Thai titles, business days
left, the penalty accruing), who sees which letters, outbox paging, matrix totals, downloads
(CSV parses, XLSX opens), the SVG diagram and flash messages. Sessions are made as the sign-in
makes them (:func:`tests.support.pages_world.session_id`); the sign-in itself is tested elsewhere.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import CYCLE_2554, pg_url
from tests.support.pages_site import Site, in_cell, inside, one, outbox_keys, serve_site, table_rows
from tests.support.pages_world import AUTUMN, SPRING, by_id, find, parse
from workflow.config.validate import read_cycle_file
from workflow.rules.calendar import business_calendar
from workflow.rules.roles import parse_role
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.store.repository import get_agreement, latest_cycle_id
from workflow.store.users import User
from workflow.web.actions import allowed_actions

CYCLE = read_cycle_file(CYCLE_2554)
CALENDAR = business_calendar(CYCLE.calendar)
TITLES = {m.id: m for m in CYCLE.milestones}
GROUPS = {g.id for g in CYCLE.groups}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """20 Apr 2011: SAR 6 is next, the KPI Template is missed; a few thousand letters."""
    tmp = tmp_path_factory.mktemp("pages")
    url = f"sqlite:///{tmp / 'rubrong.db'}" if request.param == "sqlite" else pg_url()
    yield from serve_site(url, tmp, SPRING)


@pytest.fixture(scope="module")
def autumn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """10 Nov 2011: SAR 12 (the penalised deliverable) is 8 business days late."""
    tmp = tmp_path_factory.mktemp("autumn")
    yield from serve_site(f"sqlite:///{tmp / 'rubrong.db'}", tmp, AUTUMN)


def test_each_role_lands_on_its_own_page(site: Site) -> None:
    expected = {
        "opdc": "/queue",
        "board": "/queue",
        "judge": "/queue",
        "watch": "/queue",
        "chiang": "/agreements/TH-50",
        "north": "/agreements/north-upper-1",
    }
    for who, where in expected.items():
        response = site.get("/", who, follow_redirects=False)
        assert response.status_code == 303, who
        assert response.headers["location"] == where, who
    nobody = site.get("/queue", None, follow_redirects=False)
    assert nobody.status_code == 303 and nobody.headers["location"].startswith("/signin")


def test_the_queue_counts_each_step_and_filters(site: Site) -> None:
    elements = site.page("/queue", "opdc")
    counts = {
        e.attrs["data-step"]: int(e.attrs["data-count"])
        for e in find(elements, "a")
        if e.attrs.get("data-count")
    }
    assert counts == {
        "negotiation": 1,
        "agreement": 1,
        "signing": 1,
        "kpi_audit": 1,
        "change_request": 1,
        "evaluation": 0,
        "approval": 0,
        "incentives": 0,
    }
    waiting = {
        (r.attrs["data-agreement"], r.attrs["data-step"]) for r in table_rows(elements, "queue")
    }
    assert waiting == {
        ("TH-51", "negotiation"),
        ("TH-52", "agreement"),
        ("north-upper-1", "signing"),
        ("TH-58", "kpi_audit"),
        ("TH-58", "change_request"),
    }
    assert "เจรจาตัวชี้วัด" in elements[0].text  # Thai step names
    groups = [e.attrs["value"] for e in find(elements, "option") if e.attrs.get("value", "")]
    assert len([g for g in groups if g in GROUPS]) == 18 and "north-upper-1" in groups
    assert "9.9" in one(elements, "queue").text  # the off-list KPI is named

    def shown(query: str) -> set[str]:
        return {
            r.attrs["data-agreement"]
            for r in table_rows(site.page(f"/queue?{query}", "opdc"), "queue")
        }

    assert shown("step=negotiation") == {"TH-51"}
    assert shown("kind=group") == {"north-upper-1"}
    assert shown("q=ลำพูน") == {"TH-51"}
    assert shown("q=th-52") == {"TH-52"}
    assert shown("group=north-upper-1&step=kpi_audit") == {"TH-58"}
    assert shown("group=central-upper-1") == set()
    narrowed = site.page("/queue?kind=province", "opdc")
    narrowed_counts = {
        e.attrs["data-step"]: int(e.attrs["data-count"])
        for e in find(narrowed, "a")
        if e.attrs.get("data-count")
    }
    assert narrowed_counts["signing"] == 0 and narrowed_counts["negotiation"] == 1
    english = site.get("/queue?lang=en", "opdc").text
    assert "Negotiation" in english and "Work queue" in english


def test_a_province_sees_its_tasks_in_thai_with_buddhist_era_dates(site: Site) -> None:
    elements = site.page("/agreements/TH-50", "chiang")
    soon = find(elements, "li", data_milestone="sar6")
    assert soon, "SAR 6 is the next deliverable"
    today, due = dt.date(2011, 4, 20), dt.date(2011, 4, 30)
    assert soon[0].attrs["data-days-left"] == str(CALENDAR.late_business_days(today, due, "TH-10"))
    assert soon[0].attrs["data-days-left"] == "7"
    assert "30 เม.ย. 2554" in soon[0].text
    assert TITLES["sar6"].title_th in soon[0].text
    first = find(inside(elements, "due-soon"), "li")[0]
    assert first.attrs["data-milestone"] == "sar6"  # earliest first

    late = find(elements, "li", data_milestone="kpi_template")
    assert late and late[0].attrs["data-own"] == "yes"
    days = CALENDAR.late_business_days(dt.date(2011, 1, 31), today, "TH-10")
    assert late[0].attrs["data-days-late"] == str(days)
    assert "31 ม.ค. 2554" in late[0].text
    assert by_id(elements, "penalty-so-far") is None  # the KPI Template costs no points
    assert one(elements, "state-now").attrs["data-state"] == "signed"
    assert "ลงนามแล้ว" in one(elements, "state-now").text
    kpis = by_id(elements, "kpi-versions")
    assert kpis is not None and "ร้อยละของผลสำเร็จ" in kpis.text
    timeline = [e.attrs["data-event"] for e in find(elements, "li") if "data-event" in e.attrs]
    assert timeline[-3:] == ["sign", "agree", "propose_kpis"] or "sign" in timeline

    english = parse(site.get("/agreements/TH-50?lang=en", "chiang").text)
    soon_en = find(english, "li", data_milestone="sar6")[0]
    assert "30 Apr 2011" in soon_en.text
    assert (TITLES["sar6"].title_en or TITLES["sar6"].title_th) in soon_en.text


def test_the_penalty_accrues_per_business_day_late(autumn: Site) -> None:
    elements = autumn.page("/agreements/TH-50", "chiang")
    sar12 = find(elements, "li", data_milestone="sar12")
    assert sar12 and sar12[0].attrs["data-days-late"] == "8"
    penalty = by_id(elements, "penalty-so-far")
    assert penalty is not None
    assert penalty.attrs["data-penalty"] == "0.4000"  # 0.0500 × 8 business days
    assert "0.0500" in penalty.text
    score = autumn.cli("score", "TH-50", "--json").json()
    assert score["penalty"] is None  # the score still waits for the report; the page says so far


def test_a_province_reads_its_own_letters_only(site: Site) -> None:
    own = [row["key"] for row in site.letters if row["agreement"] == "TH-50"]
    assert own, "the year gave TH-50 some mail"
    elements = site.page("/agreements/TH-50", "chiang")
    mail = table_rows(elements, "mail")
    assert mail and {row.attrs["data-agreement"] for row in mail} == {"TH-50"}
    assert outbox_keys(site, "chiang") == own
    other = site.get("/agreements/TH-51", "chiang").text
    assert 'id="mail"' not in other  # another province's page shows no letters
    addresses = {row["to"] for row in site.letters if row["agreement"] != "TH-50"}
    assert not [a for a in addresses if a in other]
    searched = outbox_keys(site, "chiang", "q=TH-51")
    assert searched == []  # a search cannot reach another organisation's letters
    download = site.get("/outbox?download=csv", "chiang")
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert [row["key"] for row in rows] == own
    assert outbox_keys(site, "board") == []  # the committee reads no letters
    group = site.page("/agreements/north-upper-1", "north")
    assert {r.attrs["data-agreement"] for r in table_rows(group, "mail")} <= {"north-upper-1"}


def test_the_outbox_pages_in_fifties_with_filters(site: Site) -> None:
    every = [row["key"] for row in site.letters]
    assert len(every) > 150, "enough letters to page"
    first = site.page("/outbox", "opdc")
    assert len(table_rows(first, "outbox")) == 50
    pager = find(first, "nav", id="pager")[0]
    assert pager.attrs["data-total"] == str(len(every))
    assert pager.attrs["data-pages"] == str(-(-len(every) // 50))
    assert outbox_keys(site, "opdc") == every
    last = site.page(f"/outbox?page={pager.attrs['data-pages']}", "opdc")
    assert [r.attrs["data-key"] for r in table_rows(last, "outbox")] == every[
        (len(every) - 1) // 50 * 50 :
    ]
    for query, keep in (
        ("status=skipped", lambda r: r["status"] == "skipped"),
        (
            "kind=reminder&milestone=sar6",
            lambda r: r["kind"] == "reminder" and r["milestone"] == "sar6",
        ),
        ("kind=digest", lambda r: r["kind"] == "digest"),
        ("q=TH-52", lambda r: "TH-52" in f"{r['subject']} {r['to']} {r['key']} {r['agreement']}"),
        (
            "agreement=TH-58&kind=receipt",
            lambda r: r["agreement"] == "TH-58" and r["kind"] == "receipt",
        ),
    ):
        expected = [row["key"] for row in site.letters if keep(row)]
        assert expected, query
        assert outbox_keys(site, "opdc", query) == expected, query
    assert outbox_keys(site, "opdc", "q=%25") == []  # LIKE wildcards are plain text


def test_the_matrix_totals_each_milestone_and_pages(site: Site) -> None:
    elements = site.page("/matrix", "watch")
    assert len(table_rows(elements, "matrix")) == 50
    totals = {
        (cell.attrs["data-milestone"], span.attrs["data-total"]): int(span.attrs["data-count"])
        for cell in find(elements, "td")
        if "data-milestone" in cell.attrs
        for span in find(in_cell(elements, cell), "span")
        if "data-total" in span.attrs
    }
    assert totals[("propose_kpis", "met")] == 5
    assert totals[("propose_kpis", "missed")] == 88
    assert totals[("kpi_template", "met")] == 1  # TH-58
    headers = [e.text for e in find(elements, "th") if "data-milestone" in e.attrs]
    assert any(h.startswith("SAR 6 เดือน") and h.endswith("30 เม.ย. 2554") for h in headers)
    assert not [h for h in headers if "sar6" in h]  # titles, not internal ids
    choices = {e.attrs.get("value") for e in find(elements, "option")}
    assert choices >= GROUPS
    filtered = site.page("/matrix?group=north-upper-1&status=missed&q=ลำ", "watch")
    assert {r.attrs["data-agreement"] for r in table_rows(filtered, "matrix")} == {"TH-51", "TH-52"}


def test_downloads_parse_and_open(site: Site, tmp_path: Path) -> None:
    matrix = site.get("/matrix?download=csv", "opdc")
    assert matrix.status_code == 200 and matrix.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(matrix.content.decode("utf-8-sig"))))
    assert len(rows) == 93
    th50 = next(row for row in rows if row["agreement"] == "TH-50")
    assert th50["propose_kpis"] == "met" and th50["kpi_template"] == "missed"
    grouped = site.get("/matrix?download=xlsx&group=north-upper-1", "opdc")
    book = tmp_path / "matrix.xlsx"
    book.write_bytes(grouped.content)
    sheet = openpyxl.load_workbook(book).active
    assert sheet is not None
    assert sheet.max_row == 1 + 5 and "รหัส" in str(sheet["A1"].value)

    report = site.get("/scores?download=csv", "chiang")
    ranked = list(csv.DictReader(io.StringIO(report.content.decode("utf-8-sig"))))
    expected = site.cli("report", "--json").json()
    assert [row["agreement"] for row in ranked] == [row["agreement"] for row in expected]
    assert list(ranked[0]) == [
        "rank",
        "kind_rank",
        "agreement",
        "kind",
        "name_th",
        "composite",
        "penalty",
        "final",
        "tier",
    ]
    xlsx = site.get("/scores?download=xlsx", "chiang")
    (tmp_path / "report.xlsx").write_bytes(xlsx.content)
    ranked_sheet = openpyxl.load_workbook(tmp_path / "report.xlsx").active
    assert ranked_sheet is not None and ranked_sheet.max_row == 94

    letters = site.get("/outbox?download=xlsx&kind=receipt", "opdc")
    (tmp_path / "outbox.xlsx").write_bytes(letters.content)
    sheet = openpyxl.load_workbook(tmp_path / "outbox.xlsx").active
    assert sheet is not None
    receipts = [row["key"] for row in site.letters if row["kind"] == "receipt"]
    assert [c.value for c in sheet["A"][1:]] == receipts


def test_the_diagram_is_server_drawn_svg_with_the_state_highlighted(site: Site) -> None:
    text = site.get("/diagram?state=audited", "board").text
    assert "<script" not in text and "cdn" not in text.lower()
    elements = parse(text)
    states = [e.attrs["data-state"] for e in find(elements, "g", class_="state")]
    assert states[0] == "drafted" and len(states) == 13
    assert [e.attrs["data-state"] for e in find(elements, "g", class_="current")] == ["audited"]
    page = parse(site.get("/agreements/TH-58", "board").text)
    assert [e.attrs["data-state"] for e in find(page, "g", class_="current")] == [
        "template_submitted"
    ]
    assert find(page, "svg")


def test_flash_messages_explain_a_refusal(site: Site) -> None:
    refused = parse(
        site.get("/agreements/TH-50?refused=3&detail=sign+is+not+allowed", "chiang").text
    )
    flash = by_id(refused, "flash")
    assert flash is not None and flash.attrs["data-kind"] == "error"
    assert "ยังดำเนินการนี้ไม่ได้ในขั้นตอนนี้" in flash.text and "sign is not allowed" in flash.text
    done = by_id(parse(site.get("/agreements/TH-50?done=publish&lang=en", "chiang").text), "flash")
    assert done is not None and "Recorded: publish" in done.text
    assert by_id(site.page("/agreements/TH-50", "chiang"), "flash") is None


@pytest.mark.parametrize("who", ["chiang", "opdc", "watch", "lamphun"])
def test_the_page_offers_exactly_the_roles_actions(site: Site, who: str) -> None:
    elements = site.page("/agreements/TH-50", who)
    shown = sorted(
        e.attrs["data-event"] for e in find(elements) if e.attrs.get("id", "").startswith("action-")
    )
    db = Database(site.url)
    try:
        with db.read() as conn:
            agreement = get_agreement(conn, str(latest_cycle_id(conn)), "TH-50")
            user = User(0, who, parse_role(_ROLES[who]))
            now = parse_instant(SPRING)  # the served clock stands there
            expected = sorted(a.event for a in allowed_actions(conn, agreement, user, at=now))
    finally:
        db.dispose()
    assert shown == expected
    if who == "chiang":
        assert "submit_sar6" in shown
    if who in ("watch", "lamphun"):
        assert shown == [] and by_id(elements, "no-actions") is not None


_ROLES = {
    "chiang": "province:TH-50",
    "opdc": "admin",
    "watch": "auditor",
    "lamphun": "province:TH-51",
}
