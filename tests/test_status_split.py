"""``status`` separates whose move it is: the organisation's overdue items apart from the ones
waiting for the OPDC, while ``overdue`` keeps listing every missed milestone (CONTRACT)."""

from __future__ import annotations

from tests.conftest import Cli


def test_own_overdue_items_are_apart_from_the_opdcs(loaded: Cli) -> None:
    cli = loaded
    assert cli("tick", "--now", "2010-12-02T00:00", "--no-send").code == 0
    rows = cli("status", "--json").json()
    th50 = next(r for r in rows if r["agreement"] == "TH-50")
    # Nothing was proposed, so nothing could be signed: one miss on each side.
    assert th50["overdue"] == ["propose_kpis", "sign"]
    assert th50["overdue_own"] == ["propose_kpis"]
    assert th50["overdue_opdc"] == ["sign"]

    alone = cli("status", "TH-50", "--json").json()
    assert alone == [th50]  # one agreement read on its own says the same

    text = cli("status", "TH-50")
    assert text.code == 0 and "OPDC" in text.out  # its own column (rich may wrap the header)


def test_fire_prints_the_same_split(loaded: Cli, kpis_json: str) -> None:
    cli = loaded
    assert cli("tick", "--now", "2010-09-15T00:00", "--no-send").code == 0
    fired = cli(
        "fire",
        "TH-50",
        "propose_kpis",
        "--as",
        "province:TH-50",
        "--at",
        "2010-09-15T10:00",
        "--data",
        kpis_json,
        "--json",
    )
    assert fired.code == 0, fired.err
    row = fired.json()
    assert row["overdue"] == [] and row["overdue_own"] == [] and row["overdue_opdc"] == []
