"""The ranked report of every agreement in a cycle (scores from ``workflow.usecases.score``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from workflow.rules.ranking import rank_rows
from workflow.store.repository import get_cycle, list_agreements
from workflow.usecases.score import agreement_score


def score_cards(conn: Connection, cycle_id: str | None) -> list[dict[str, Any]]:
    """The score card of every agreement of the cycle, in id order."""
    cycle = get_cycle(conn, cycle_id)
    return [agreement_score(conn, cycle, a) for a in list_agreements(conn, cycle.id, None)]


def report_rows(conn: Connection, cycle_id: str | None) -> list[dict[str, Any]]:
    """``report`` rows, ranked (CONTRACT.md)."""
    cards = score_cards(conn, cycle_id)
    rows = [
        {
            "agreement": card["agreement"],
            "kind": card["kind"],
            "name_th": card["name_th"],
            "composite": card["composite"],
            "penalty": card["penalty"],
            "final": card["final"],
            "tier": card["tier"],
            "late_business_days": card["late_business_days"],
        }
        for card in cards
    ]
    return rank_rows(rows)
