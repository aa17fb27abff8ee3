"""The read side: rows exactly as the CLI's ``--json`` (and the API) print them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, false, func, or_, select, text

from workflow.access import EVERYTHING, RowScope
from workflow.history import HISTORY, printed
from workflow.repository import Agreement, get_cycle, list_agreements
from workflow.tables import OutboxRow
from workflow.timeutil import format_instant

OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]

HISTORY_BATCH = 1000  # history rows fetched at a time when streaming


def status_rows(
    conn: Connection, cycle_id: str | None, org_ids: list[str] | None
) -> list[dict[str, Any]]:
    """``status``: one row per agreement (named ones read only their own rows)."""
    cycle = get_cycle(conn, cycle_id)
    agreements = list_agreements(conn, cycle.id, org_ids)
    pks = [a.pk for a in agreements] if org_ids else None
    next_due = _next_due(conn, cycle.id, pks)
    overdue = _overdue(conn, cycle.id, pks)
    return [status_row(a, next_due.get(a.pk), overdue.get(a.pk, [])) for a in agreements]


def status_row(
    agreement: Agreement, next_due: dict[str, Any] | None, overdue: list[tuple[str, str]]
) -> dict[str, Any]:
    """One agreement as ``status`` prints it.

    ``overdue`` lists every missed milestone (CONTRACT); ``overdue_own`` those that are the
    organisation's move and ``overdue_opdc`` those waiting for the OPDC (or its committee).
    """
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
        "overdue": [milestone for milestone, _ in overdue],
        "overdue_own": [m for m, actor in overdue if actor == "organisation"],
        "overdue_opdc": [m for m, actor in overdue if actor != "organisation"],
    }


def agreement_status(conn: Connection, agreement: Agreement) -> dict[str, Any]:
    """``status`` of a single agreement (what ``fire --json`` prints)."""
    return status_row(
        agreement,
        _next_due(conn, agreement.cycle_id, [agreement.pk]).get(agreement.pk),
        _overdue(conn, agreement.cycle_id, [agreement.pk]).get(agreement.pk, []),
    )


def _only(pks: list[int] | None) -> tuple[str, dict[str, Any]]:
    """A filter on some agreements (so one agreement's status reads its own rows only)."""
    if pks is None:
        return "", {}
    names = {f"pk{i}": pk for i, pk in enumerate(pks)}
    marks = ", ".join(f":{name}" for name in names) or "NULL"
    return f"AND s.agreement_pk IN ({marks}) ", names


def _next_due(
    conn: Connection, cycle_id: str, pks: list[int] | None = None
) -> dict[int, dict[str, Any]]:
    """The organisation's own earliest pending deliverable per agreement."""
    only, params = _only(pks)
    rows = conn.execute(
        text(
            "SELECT s.agreement_pk, m.id, m.due FROM milestone_status s "
            "JOIN cycle_milestones m ON m.cycle_id = s.cycle_id AND m.id = s.milestone_id "
            "WHERE s.cycle_id = :cycle AND s.status = 'pending' AND m.kind = 'deliverable' "
            "AND m.actor = 'organisation' AND m.due IS NOT NULL "
            + only
            + "ORDER BY s.agreement_pk, m.due, m.position"
        ),
        {"cycle": cycle_id, **params},
    )
    found: dict[int, dict[str, Any]] = {}
    for agreement_pk, milestone, due in rows:
        found.setdefault(agreement_pk, {"milestone": milestone, "due": due})
    return found


def _overdue(
    conn: Connection, cycle_id: str, pks: list[int] | None = None
) -> dict[int, list[tuple[str, str]]]:
    """Missed milestones per agreement, with whose move each is (the milestone's actor)."""
    only, params = _only(pks)
    rows = conn.execute(
        text(
            "SELECT s.agreement_pk, s.milestone_id, m.actor FROM milestone_status s "
            "JOIN cycle_milestones m ON m.cycle_id = s.cycle_id AND m.id = s.milestone_id "
            "WHERE s.cycle_id = :cycle AND s.status = 'missed' "
            + only
            + "ORDER BY s.agreement_pk, m.position"
        ),
        {"cycle": cycle_id, **params},
    )
    found: dict[int, list[tuple[str, str]]] = {}
    for agreement_pk, milestone, actor in rows:
        found.setdefault(agreement_pk, []).append((milestone, actor))
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
    return list(iter_history_rows(conn, cycle_id, agreement, as_of))


def iter_history_rows(
    conn: Connection,
    cycle_id: str | None,
    agreement: str | None,
    as_of: int | None,
) -> Iterator[dict[str, Any]]:
    """``history_rows`` one entry at a time, fetched in batches: constant memory, so the whole
    history of a national cycle can be printed (or checked) as it is read. Bad input (an
    unknown agreement) is refused when this is called, not when the first entry is read."""
    query = select(HISTORY).order_by(HISTORY.c.seq)
    if agreement is not None:
        cycle = get_cycle(conn, cycle_id)
        list_agreements(conn, cycle.id, [agreement])  # unknown agreement → exit 2
        query = query.where(HISTORY.c.cycle_id == cycle.id, HISTORY.c.agreement == agreement)
    elif cycle_id is not None:
        query = query.where(HISTORY.c.cycle_id == cycle_id)
    if as_of is not None:
        query = query.where(HISTORY.c.recorded_at <= as_of)
    # Checked above, before the first entry is asked for: an unknown agreement fails before
    # anything is printed.
    rows = conn.execution_options(yield_per=HISTORY_BATCH).execute(query)
    return (printed(row._mapping) for row in rows)


def _outbox_scoped(query: Select[Any], scope: RowScope) -> Select[Any]:
    """``query`` narrowed to the rows ``scope`` may read (in SQL)."""
    if scope.everything:
        return query
    if scope.organisation is None:
        return query.where(false())
    return query.where(OUTBOX.c.agreement == scope.organisation)


def _outbox_row(row: Any) -> dict[str, Any]:
    """One outbox row as ``outbox --json`` prints it."""
    return {
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


def outbox_rows(
    conn: Connection,
    cycle_id: str | None = None,
    scope: RowScope = EVERYTHING,
    key: str | None = None,
) -> list[dict[str, Any]]:
    """``outbox``: the notifications ``scope`` may read (filtered in SQL), by send time then key.

    ``key`` narrows to one row. The CLI (the operator's console) reads ``EVERYTHING``; the web
    passes :func:`workflow.access.outbox_scope` of the caller's role.
    """
    query = select(OUTBOX).order_by(OUTBOX.c.send_at, OUTBOX.c.key)
    if cycle_id is not None:
        query = query.where(OUTBOX.c.cycle_id == cycle_id)
    if key is not None:
        query = query.where(OUTBOX.c.key == key)
    return [_outbox_row(row) for row in conn.execute(_outbox_scoped(query, scope))]


@dataclass(frozen=True)
class OutboxFilter:
    """What the outbox page narrows to; empty strings mean "any"."""

    status: str = ""
    kind: str = ""
    milestone: str = ""
    agreement: str = ""
    text: str = ""  # a substring of the subject, recipient, key or agreement


def outbox_page(
    conn: Connection,
    scope: RowScope,
    where: OutboxFilter,
    limit: int | None,
    offset: int = 0,
    newest_first: bool = False,
) -> tuple[int, list[dict[str, Any]]]:
    """(rows matching, one page of them) of the outbox ``scope`` may read, paged in SQL.

    Ordered as :func:`outbox_rows` (or the reverse with ``newest_first``); ``limit`` None reads
    every matching row (downloads).
    """
    query = _outbox_scoped(select(OUTBOX), scope)
    for column, value in (
        (OUTBOX.c.status, where.status),
        (OUTBOX.c.kind, where.kind),
        (OUTBOX.c.milestone, where.milestone),
        (OUTBOX.c.agreement, where.agreement),
    ):
        if value:
            query = query.where(column == value)
    if where.text:
        escaped = where.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (
                        OUTBOX.c.subject,
                        OUTBOX.c.recipient,
                        OUTBOX.c.key,
                        OUTBOX.c.agreement,
                    )
                )
            )
        )
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    order = (
        (OUTBOX.c.send_at.desc(), OUTBOX.c.key.desc())
        if newest_first
        else (
            OUTBOX.c.send_at,
            OUTBOX.c.key,
        )
    )
    page = query.order_by(*order).offset(offset)
    if limit is not None:
        page = page.limit(limit)
    return int(total), [_outbox_row(row) for row in conn.execute(page)]


def outbox_choices(conn: Connection, scope: RowScope) -> dict[str, list[str]]:
    """The kinds and milestones present among the rows ``scope`` may read (filter choices)."""
    found: dict[str, list[str]] = {}
    for name, column in (("kinds", OUTBOX.c.kind), ("milestones", OUTBOX.c.milestone)):
        query = _outbox_scoped(select(column).distinct(), scope)
        found[name] = sorted(str(v) for (v,) in conn.execute(query) if v is not None)
    return found


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
