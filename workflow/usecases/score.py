"""An agreement's score card, from its stored KPIs, results and penalised milestone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from workflow.rules.scoring import score_card
from workflow.store.repository import Agreement, StoredCycle, statuses
from workflow.usecases.event_data import stored_kpis


def penalised_days(status: str, late_days: int | None) -> int | None:
    """Late business days of the penalised milestone: 0 when met or waived, null while open."""
    if status in ("met", "waived"):
        return 0
    if status == "late":
        return late_days
    return None


def agreement_score(conn: Connection, cycle: StoredCycle, agreement: Agreement) -> dict[str, Any]:
    """The ``score`` JSON object of one agreement (CONTRACT.md)."""
    penalised = cycle.settings.penalised
    days: int | None = None
    per_day = None
    current = statuses(conn, agreement.pk).get(penalised.id) if penalised else None
    if penalised is not None and current is not None:
        # A cycle whose penalised milestone does not concern this agreement penalises nothing.
        days = penalised_days(current.status, current.late_business_days)
        per_day = penalised.penalty_per_business_day
    card = score_card(
        agreement.org_id,
        stored_kpis(agreement, cycle.settings),
        agreement.results,
        days,
        per_day,
        cycle.settings.scoring,
    )
    card["kind"] = agreement.kind
    card["name_th"] = agreement.name_th
    card["state"] = agreement.state
    return card
