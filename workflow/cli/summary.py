"""The end-of-year summary: compliance matrix (organisation × deliverable), totals, ranking."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from workflow.rules.ranking import REPORT_KEYS

STYLE = {
    "met": ("✓", "green"),
    "late": ("L", "yellow"),
    "missed": ("✗", "bold red"),
    "waived": ("W", "bright_black"),
    "pending": ("·", "cyan"),
}


def compliance_matrix(
    milestones: list[dict[str, Any]],
) -> tuple[list[str], dict[str, dict[str, dict[str, Any]]]]:
    """Deliverable ids in calendar order, and agreement → milestone → row."""
    columns: list[str] = []
    grid: dict[str, dict[str, dict[str, Any]]] = {}
    for row in milestones:
        if row["kind"] != "deliverable":
            continue
        if row["milestone"] not in columns:
            columns.append(row["milestone"])
        grid.setdefault(row["agreement"], {})[row["milestone"]] = row
    return columns, grid


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return ""
    symbol, style = STYLE.get(row["status"], ("?", "white"))
    if row["status"] == "late" and row["late_business_days"]:
        symbol = f"L{row['late_business_days']}"
    return f"[{style}]{symbol}[/]"


def print_summary(
    console: Console,
    statuses: list[dict[str, Any]],
    milestones: list[dict[str, Any]],
    ranking: list[dict[str, Any]],
    totals: dict[str, Any],
) -> None:
    """Print the matrix, the status totals, the notifications and the scored ranking."""
    columns, grid = compliance_matrix(milestones)
    names = {row["agreement"]: row for row in statuses}
    table = Table(
        title="Compliance matrix / ตารางการปฏิบัติตามกำหนด", show_lines=False, pad_edge=False
    )
    table.add_column("agreement")
    table.add_column("ชื่อ")
    table.add_column("state")
    for column in columns:
        table.add_column(column, justify="center")
    for agreement in sorted(grid, key=lambda a: (names[a]["kind"] != "group", a)):
        row = names[agreement]
        table.add_row(
            agreement,
            row["name_th"],
            row["state"],
            *(_cell(grid[agreement].get(c)) for c in columns),
        )
    console.print(table)
    console.print(
        "legend: [green]✓ met[/]  [yellow]L<n> late (business days)[/]  "
        "[bold red]✗ missed[/]  [bright_black]W waived[/]  [cyan]· pending[/]"
    )
    counts = Counter(row["status"] for cells in grid.values() for row in cells.values())
    console.print("deliverables: " + ", ".join(f"{status} {counts[status]}" for status in STYLE))
    console.print(
        f"events applied {totals['events']}, refused {totals['refused']}; notifications "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(totals["notifications"].items()))
        + f"; mail sent {totals['sent']}, failed {totals['failed']}; {totals['wall_seconds']} s"
    )
    rank = Table(title="Scores, ranked / ผลคะแนนเรียงลำดับ")
    for column in (
        "rank",
        "kind rank",
        "agreement",
        "kind",
        "ชื่อ",
        "composite",
        "penalty",
        "final",
        "tier",
    ):
        rank.add_column(
            column,
            justify="right"
            if column in ("rank", "kind rank", "composite", "penalty", "final")
            else "left",
        )
    for row in ranking:
        rank.add_row(*("" if row[key] is None else str(row[key]) for key in REPORT_KEYS))
    console.print(rank)
