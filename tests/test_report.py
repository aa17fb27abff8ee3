"""Report: competition ranking, kind ranks, unscored rows, and the CSV/JSON/XLSX/SVG writers."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

from openpyxl import load_workbook

from workflow.rules.ranking import REPORT_KEYS, rank_rows, score_chart_svg, to_csv, to_json, to_xlsx


def row(agreement: str, kind: str, final: str | None, name: str = "") -> dict[str, object]:
    return {
        "agreement": agreement,
        "kind": kind,
        "name_th": name or f"ชื่อ {agreement}",
        "composite": final,
        "penalty": None if final is None else "0.0000",
        "final": final,
        "tier": None if final is None else "ผ่าน",
    }


ROWS = [
    row("TH-58", "province", "3.2000", "แม่ฮ่องสอน"),
    row("north-upper-1", "group", None),
    row("TH-52", "province", "4.1000", "ลำปาง"),
    row("TH-51", "province", None, "ลำพูน"),
    row("TH-50", "province", "3.2000", "เชียงใหม่"),
    row("central-upper-1", "group", "3.2000"),
    row("TH-12", "province", "2.5000", "นนทบุรี"),
]


def test_ties_share_a_rank_and_list_in_id_order() -> None:
    ranked = rank_rows(ROWS)
    assert [(r["rank"], r["agreement"]) for r in ranked] == [
        (1, "TH-52"),
        (2, "TH-50"),
        (2, "TH-58"),
        (2, "central-upper-1"),
        (5, "TH-12"),
        (None, "TH-51"),
        (None, "north-upper-1"),
    ]
    assert tuple(ranked[0])[: len(REPORT_KEYS)] == REPORT_KEYS


def test_one_two_two_four() -> None:
    rows = [
        row("d", "province", "1.0000"),
        row("c", "province", "3.0000"),
        row("b", "province", "3.0000"),
        row("a", "province", "4.0000"),
    ]
    assert [(r["rank"], r["agreement"]) for r in rank_rows(rows)] == [
        (1, "a"),
        (2, "b"),
        (2, "c"),
        (4, "d"),
    ]


def test_finals_compare_as_decimals_not_text() -> None:
    rows = [row("a", "province", "10.0000"), row("b", "province", "9.5000")]
    rows.append(row("c", "province", "-0.2000"))
    assert [r["agreement"] for r in rank_rows(rows)] == ["a", "b", "c"]


def test_kind_rank() -> None:
    ranked = {r["agreement"]: r for r in rank_rows(ROWS)}
    provinces = {a: ranked[a]["kind_rank"] for a in ("TH-52", "TH-50", "TH-58", "TH-12", "TH-51")}
    assert provinces == {"TH-52": 1, "TH-50": 2, "TH-58": 2, "TH-12": 4, "TH-51": None}
    assert ranked["central-upper-1"]["kind_rank"] == 1
    assert ranked["north-upper-1"]["kind_rank"] is None


def test_unscored_last_and_extra_keys_kept() -> None:
    rows = [dict(row("b", "agency", None), late_business_days=None), row("a", "agency", None)]
    rows.append({**row("z", "agency", None), "final": Decimal("0.5")})
    ranked = rank_rows(rows)
    assert [(r["rank"], r["agreement"]) for r in ranked] == [(1, "z"), (None, "a"), (None, "b")]
    assert ranked[0]["final"] == "0.5000"  # Decimals become 4-place strings
    assert "late_business_days" in ranked[2]


def test_csv() -> None:
    text = to_csv(rank_rows(ROWS))
    lines = text.splitlines()
    assert lines[0] == ",".join(REPORT_KEYS)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(ROWS)
    assert parsed[0]["rank"] == "1" and parsed[0]["name_th"] == "ลำปาง"
    assert parsed[-1]["rank"] == "" and parsed[-1]["final"] == ""  # None -> empty field
    assert to_csv([], bom=True).startswith("\ufeffrank,")


def test_json() -> None:
    ranked = rank_rows(ROWS)
    data = json.loads(to_json(ranked))
    assert data == ranked
    assert "ลำปาง" in to_json(ranked)  # Thai kept as is


def test_xlsx_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    to_xlsx(rank_rows(ROWS), path)
    sheet = load_workbook(path).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "อันดับ\nRank"
    assert [str(h).split("\n")[1] for h in values[0]] == [
        "Rank",
        "Rank in kind",
        "Agreement",
        "Kind",
        "Name",
        "Composite",
        "Penalty",
        "Final",
        "Tier",
    ]
    assert sheet.cell(row=1, column=1).alignment.wrap_text
    first = values[1]
    assert first[0] == 1 and first[2] == "TH-52" and first[4] == "ลำปาง"
    assert first[7] == 4.1 and isinstance(first[7], float)
    assert sheet.cell(row=2, column=8).number_format == "0.0000"
    assert values[-1][0] is None and values[-1][7] is None
    assert len(values) == len(ROWS) + 1


def test_svg_parses() -> None:
    late = {"TH-50": 3, "TH-58": 0, "TH-52": 12, "north-upper-1": 1}
    svg = score_chart_svg(rank_rows(ROWS), late)
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    joined = " ".join(texts)
    assert "คะแนนสุทธิ" in joined and "เชียงใหม่" in joined
    assert "ยังไม่มีคะแนน (unscored): 2" in texts
    # bars listed most days first
    labels = [t for t in texts if t.startswith(("TH-", "north"))]
    assert labels[0] == "TH-52 ลำปาง"
    # awkward characters are escaped, empty input still valid
    weird = [row("x<&>", "agency", "5.0000", name='"<ชื่อ>" & co')]
    ET.fromstring(score_chart_svg(weird, {"x<&>": 2}))
    ET.fromstring(score_chart_svg([], {}))
