"""What each event's data means: checked after the state and guards, turned into changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflow.config.model import Cycle
from workflow.rules.errors import BadInput, quoted
from workflow.rules.kpis import Kpi, KpiSetError, kpis_to_json, parse_kpi_set, parse_results
from workflow.store.repository import Agreement
from workflow.usecases.esar import SUBMIT_EVENTS, check_submission

CHANGE_REASONS = ("external", "budget")


@dataclass
class Effects:
    """The changes an event makes beyond the state: agreement columns and KPI versions."""

    updates: dict[str, Any] = field(default_factory=dict)
    new_kpis: list[dict[str, Any]] | None = None
    waive: str | None = None


def stored_kpis(agreement: Agreement, cycle: Cycle) -> tuple[Kpi, ...] | None:
    """The agreement's current KPI set as records."""
    if not agreement.kpis:
        return None
    return parse_kpi_set({"kpis": agreement.kpis}, cycle.scoring)


def _kpi_set(data: dict[str, Any], cycle: Cycle) -> list[dict[str, Any]]:
    try:
        return kpis_to_json(parse_kpi_set(data, cycle.scoring))
    except KpiSetError as exc:
        raise BadInput(f"bad KPI set: {exc}") from exc


def _text(data: dict[str, Any], key: str, event: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{event} needs data.{key}: a non-empty text")
    return value


def interpret(
    event: str, data: dict[str, Any], agreement: Agreement, cycle: Cycle, from_state: str
) -> Effects:
    """Check ``data`` for ``event`` (exit 2 when bad) and say what the event changes."""
    effects = Effects()
    if event == "propose_kpis":
        effects.new_kpis = _kpi_set(data, cycle)
    elif event == "agree" and "kpis" in data:
        if from_state != "negotiating":
            raise BadInput("a negotiated KPI set can only be agreed after start_negotiation")
        effects.new_kpis = _kpi_set(data, cycle)
    elif event == "request_change":
        reason = data.get("reason")
        if reason not in CHANGE_REASONS:
            raise BadInput(
                f"request_change reason must be one of {', '.join(CHANGE_REASONS)} "
                f"(uncontrollable external factors, or budget), not {quoted(reason)}"
            )
        explanation = _text(data, "explanation", event)
        kpis = _kpi_set(data, cycle)
        effects.updates["change_request"] = {
            "reason": reason,
            "explanation": explanation,
            "kpis": kpis,
        }
    elif event == "approve_change":
        assert agreement.change_request is not None  # the guard checked it is open
        effects.new_kpis = agreement.change_request["kpis"]
        effects.updates["change_request"] = None
    elif event == "reject_change":
        effects.updates["change_request"] = None
    elif event == "waive":
        effects.waive = waive_target(data, agreement, cycle)
        _text(data, "reason", event)
    elif event == "evaluate":
        current = stored_kpis(agreement, cycle)
        if not current:
            raise BadInput("evaluate needs a KPI set on the agreement; none was proposed")
        try:
            effects.updates["results"] = parse_results(data, current)
        except KpiSetError as exc:
            raise BadInput(f"bad results: {exc}") from exc
    elif event == "publish":
        effects.updates["published"] = True
    elif event in SUBMIT_EVENTS and data:
        # The e-SAR Card; a document is read, checked and stored here, and ``data["document"]``
        # becomes its record (``workflow.usecases.esar``).
        check_submission(event, data, [kpi["id"] for kpi in agreement.kpis or ()])
    return effects


def waive_target(data: dict[str, Any], agreement: Agreement, cycle: Cycle) -> str:
    """The deliverable a ``waive`` names; exit 2 unless it is one of this agreement's."""
    name = data.get("milestone")
    milestone = cycle.milestone(name) if isinstance(name, str) else None
    if milestone is None:
        raise BadInput(
            f"waive needs data.milestone naming a milestone of the cycle, not {quoted(name)}"
        )
    if milestone.kind != "deliverable":
        raise BadInput(f"only deliverables can be waived; {name} is a {milestone.kind}")
    if not milestone.applies(agreement.kind):
        raise BadInput(f"milestone {name} does not concern {agreement.org_id}")
    return milestone.id
