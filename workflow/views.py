"""The read side: rows exactly as the CLI's ``--json`` (and the API) print them."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select, text

from notifications.outbox import OUTBOX
from workflow.history import HISTORY, printed
from workflow.repository import Agreement, get_cycle, list_agreements
from workflow.timeutil import format_instant


def status_rows(
    conn: Connection, cycle_id: str | None, org_ids: list[str] | None
) -> list[dict[str, Any]]:
    """``status``: one row per agreement."""
    cycle = get_cycle(conn, cycle_id)
    agreements = list_agreements(conn, cycle.id, org_ids)
    next_due = _next_due(conn, cycle.id)
    overdue = _overdue(conn, cycle.id)
    return [status_row(a, next_due.get(a.pk), overdue.get(a.pk, [])) for a in agreements]


def status_row(
    agreement: Agreement, next_due: dict[str, Any] | None, overdue: list[str]
) -> dict[str, Any]:
    """One agreement as ``status`` prints it."""
    return {
        "agreement": agreement.org_id,
        "cycle": agreement.cycle_id,
        "kind": agreement.kind,
        "group": agreement.group_id,
        "name_th": agreement.name_th,
        "name_en": agreement.name_en,
        "state": agreement.state,
        "version": agreement.version,
        "published": agreement.published,
        "kpi_version": agreement.kpi_version,
        "change_request_open": agreement.change_request is not None,
        "next_due": next_due,
        "overdue": overdue,
    }


def agreement_status(conn: Connection, agreement: Agreement) -> dict[str, Any]:
    """``status`` of a single agreement (what ``fire --json`` prints)."""
    return status_row(
        agreement,
        _next_due(conn, agreement.cycle_id, agreement.pk).get(agreement.pk),
        _overdue(conn, agreement.cycle_id, agreement.pk).get(agreement.pk, []),
    )


def _next_due(conn: Connection, cycle_id: str, pk: int | None = None) -> dict[int, dict[str, Any]]:
    """The organisation's own earliest pending deliverable per agreement."""
    rows = conn.execute(
        text(
            "SELECT s.agreement_pk, m.id, m.due FROM milestone_status s "
            "JOIN cycle_milestones m ON m.cycle_id = s.cycle_id AND m.id = s.milestone_id "
            "WHERE s.cycle_id = :cycle AND s.status = 'pending' AND m.kind = 'deliverable' "
            "AND m.actor = 'organisation' AND m.due IS NOT NULL "
            + ("AND s.agreement_pk = :pk " if pk is not None else "")
            + "ORDER BY s.agreement_pk, m.due, m.position"
        ),
        {"cycle": cycle_id, "pk": pk},
    )
    found: dict[int, dict[str, Any]] = {}
    for agreement_pk, milestone, due in rows:
        found.setdefault(agreement_pk, {"milestone": milestone, "due": due})
    return found


def _overdue(conn: Connection, cycle_id: str, pk: int | None = None) -> dict[int, list[str]]:
    rows = conn.execute(
        text(
            "SELECT s.agreement_pk, s.milestone_id FROM milestone_status s "
            "JOIN cycle_milestones m ON m.cycle_id = s.cycle_id AND m.id = s.milestone_id "
            "WHERE s.cycle_id = :cycle AND s.status = 'missed' "
            + ("AND s.agreement_pk = :pk " if pk is not None else "")
            + "ORDER BY s.agreement_pk, m.position"
        ),
        {"cycle": cycle_id, "pk": pk},
    )
    found: dict[int, list[str]] = {}
    for agreement_pk, milestone in rows:
        found.setdefault(agreement_pk, []).append(milestone)
    return found


def milestone_rows(
    conn: Connection, cycle_id: str | None, org_ids: list[str] | None
) -> list[dict[str, Any]]:
    """``milestones``: one row per agreement × milestone that concerns it."""
    cycle = get_cycle(conn, cycle_id)
    agreements = {a.pk: a for a in list_agreements(conn, cycle.id, org_ids)}
    rows = conn.execute(
        text(
            "SELECT s.agreement_pk, s.status, s.met_at, s.late_business_days, m.id, m.kind, "
            "m.actor, m.due, m.published_due, m.start, m.title_th, m.title_en "
            "FROM milestone_status s JOIN cycle_milestones m "
            "ON m.cycle_id = s.cycle_id AND m.id = s.milestone_id "
            "WHERE s.cycle_id = :cycle ORDER BY s.agreement_pk, m.position"
        ),
        {"cycle": cycle.id},
    )
    out: list[dict[str, Any]] = []
    for row in rows:
        agreement = agreements.get(row.agreement_pk)
        if agreement is None:
            continue
        entry: dict[str, Any] = {
            "agreement": agreement.org_id,
            "milestone": row.id,
            "kind": row.kind,
            "actor": row.actor,
            "title_th": row.title_th,
            "title_en": row.title_en,
            "due": row.due,
            "published_due": row.published_due,
            "status": row.status,
            "met_at": format_instant(row.met_at),
            "late_business_days": row.late_business_days,
        }
        if row.kind == "window":
            entry["start"] = row.start
        out.append(entry)
    out.sort(key=lambda item: item["agreement"])  # stable: milestone order kept per agreement
    return out


def history_rows(
    conn: Connection,
    cycle_id: str | None,
    agreement: str | None,
    as_of: int | None,
) -> list[dict[str, Any]]:
    """``history``: entries in ``seq`` order, optionally one agreement's, optionally as of T."""
    query = select(HISTORY).order_by(HISTORY.c.seq)
    if agreement is not None:
        cycle = get_cycle(conn, cycle_id)
        list_agreements(conn, cycle.id, [agreement])  # unknown agreement → exit 2
        query = query.where(HISTORY.c.cycle_id == cycle.id, HISTORY.c.agreement == agreement)
    elif cycle_id is not None:
        query = query.where(HISTORY.c.cycle_id == cycle_id)
    if as_of is not None:
        query = query.where(HISTORY.c.recorded_at <= as_of)
    return [printed(row._mapping) for row in conn.execute(query)]


def outbox_rows(conn: Connection, cycle_id: str | None = None) -> list[dict[str, Any]]:
    """``outbox``: every notification, by send time then key."""
    query = select(OUTBOX).order_by(OUTBOX.c.send_at, OUTBOX.c.key)
    if cycle_id is not None:
        query = query.where(OUTBOX.c.cycle_id == cycle_id)
    return [
        {
            "key": row.key,
            "cycle": row.cycle_id,
            "agreement": row.agreement,
            "milestone": row.milestone,
            "kind": row.kind,
            "notice": row.notice,
            "to": row.recipient,
            "subject": row.subject,
            "send_at": format_instant(row.send_at),
            "status": row.status,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "message_id": row.message_id,
            "template": f"{row.template}@{row.template_version}",
            "sent_at": format_instant(row.sent_at),
        }
        for row in conn.execute(query)
    ]


def kpi_version_rows(
    conn: Connection, cycle_id: str | None, agreement: str
) -> list[dict[str, Any]]:
    """``kpis AGREEMENT``: every KPI set the agreement has had, oldest first."""
    cycle = get_cycle(conn, cycle_id)
    (found,) = list_agreements(conn, cycle.id, [agreement])
    rows = conn.execute(
        text(
            "SELECT v.version, v.source_event, v.history_seq, v.kpis, h.at "
            "FROM kpi_versions v JOIN history h ON h.seq = v.history_seq "
            "WHERE v.agreement_pk = :pk ORDER BY v.version"
        ),
        {"pk": found.pk},
    )
    return [
        {
            "agreement": found.org_id,
            "version": row.version,
            "current": row.version == found.kpi_version,
            "source_event": row.source_event,
            "history_seq": row.history_seq,
            "at": format_instant(row.at),
            "kpis": json.loads(row.kpis),
        }
        for row in rows
    ]
