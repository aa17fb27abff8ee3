"""``score`` and ``report`` through the CLI, on a year simulated from the demo scenario."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.conftest import CYCLE_2554, ROOT, Cli

SCENARIO = ROOT / "scenarios" / "demo_2554.jsonl"
KEYS = [
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


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A database kept from `simulate` of the demo year (no mail sent)."""
    where = tmp_path_factory.mktemp("year")
    url = f"sqlite:///{where / 'year.db'}"
    cli = Cli(url, where)
    result = cli(
        "simulate",
        str(CYCLE_2554),
        "--scenario",
        str(SCENARIO),
        "--keep-db",
        url,
        "--no-send",
        "--json",
    )
    assert result.code == 0, result.err
    assert result.json()["events"] > 1000
    return cli


def test_report_json_is_ranked_by_final_with_unscored_last(year: Cli) -> None:
    rows = year("report", "--json").json()
    assert len(rows) == 93
    assert all(set(KEYS) <= set(row) for row in rows)
    scored = [row for row in rows if row["final"] is not None]
    unscored = [row for row in rows if row["final"] is None]
    assert unscored and all(row["rank"] is None for row in unscored)
    assert rows[-len(unscored) :] == unscored
    assert [r["agreement"] for r in unscored] == sorted(r["agreement"] for r in unscored)
    finals = [Decimal(row["final"]) for row in scored]
    assert finals == sorted(finals, reverse=True)
    for position, row in enumerate(scored):
        # competition ranking: 1 + the number of strictly better finals
        assert row["rank"] == 1 + sum(1 for f in finals if f > Decimal(row["final"]))
        same_kind = [Decimal(r["final"]) for r in scored if r["kind"] == row["kind"]]
        assert row["kind_rank"] == 1 + sum(1 for f in same_kind if f > Decimal(row["final"]))
        assert Decimal(row["final"]) == Decimal(row["composite"]) - Decimal(row["penalty"])
        assert position == 0 or Decimal(scored[position - 1]["final"]) >= Decimal(row["final"])


def test_report_csv_has_exactly_the_contract_header(year: Cli) -> None:
    out = year("report", "--format", "csv").out.lstrip("\ufeff")
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == KEYS
    assert len(table) == 94
    assert table[-1][0] == ""  # unscored rows: empty rank


def test_report_xlsx_and_chart(year: Cli, tmp_path: Path) -> None:
    book, chart = tmp_path / "r.xlsx", tmp_path / "c.svg"
    result = year("report", "--format", "xlsx", "-o", str(book), "--chart", str(chart))
    assert result.code == 0, result.err
    sheet = load_workbook(book).active
    assert sheet is not None
    header = [cell.value for cell in next(sheet.iter_rows(min_row=1, max_row=1))]
    assert "อันดับ" in str(header[0]) and "Rank" in str(header[0])
    assert sheet.max_row == 94
    root = ET.parse(chart).getroot()
    assert root.tag.endswith("svg")


def test_score_of_a_late_sar12_shows_every_step(year: Cli) -> None:
    late = [
        m
        for m in year("milestones", "--json").json()
        if m["milestone"] == "sar12" and m["status"] == "late"
    ]
    assert late
    agreement, days = late[0]["agreement"], late[0]["late_business_days"]
    card = year("score", agreement, "--json").json()
    assert card["late_business_days"] == days
    assert Decimal(card["penalty"]) == Decimal("0.0500") * days
    assert Decimal(card["final"]) == Decimal(card["composite"]) - Decimal(card["penalty"])
    weights = sum((Decimal(str(k["weight"])) for k in card["kpis"]), Decimal(0))
    weighted = sum(
        (Decimal(str(k["weight"])) * Decimal(k["score"]) for k in card["kpis"]), Decimal(0)
    )
    composite = weighted / weights
    assert Decimal(card["composite"]) == composite.quantize(Decimal("0.0001"))
    assert set(card["dimensions"]) == {"1", "2", "3", "4"}


def test_score_works_in_any_state_with_nulls_until_known(year: Cli) -> None:
    never = next(r for r in year("report", "--json").json() if r["final"] is None)["agreement"]
    card = year("score", never, "--json").json()
    assert card["final"] is None and card["tier"] is None
    assert card["kpis"] and all(k["score"] is None for k in card["kpis"])
