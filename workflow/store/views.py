"""The read side: rows exactly as the CLI's ``--json`` (and the API) print them.

``status`` and ``milestones`` rows are ``workflow.store.read_views``' (the one implementation, which
the CLI also runs on the bare driver); here they are read over a SQLAlchemy connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, false, func, or_, select, text

from workflow.rules.access import EVERYTHING, RowScope
from workflow.rules.timeutil import format_instant
from workflow.store import read_views
from workflow.store.database import ConnectionReader
from workflow.store.read_history import history_entries
from workflow.store.read_views import status_row as status_row  # re-exported: public here too
from workflow.store.repository import Agreement, get_cycle, list_agreements
from workflow.store.tables import OutboxRow

OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]

HISTORY_BATCH = 1000  # history rows fetched at a time when streaming


def status_rows(
    conn: Connection, cycle_id: str | None, org_ids: list[str] | None
) -> list[dict[str, Any]]:
    """``status``: one row per agreement (named ones read only their own rows)."""
    return read_views.status_rows(ConnectionReader(conn), cycle_id, org_ids)


def agreement_status(conn: Connection, agreement: Agreement) -> dict[str, Any]:
    """``status`` of a single agreement (what ``fire --json`` prints)."""
    return read_views.agreement_status(ConnectionReader(conn), agreement)


def milestone_rows(
    conn: Connection, cycle_id: str | None, org_ids: list[str] | None
) -> list[dict[str, Any]]:
    """``milestones``: one row per agreement × milestone that concerns it."""
    return read_views.milestone_rows(ConnectionReader(conn), cycle_id, org_ids)


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
    return history_entries(ConnectionReader(conn), cycle_id, agreement, as_of)


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
    passes :func:`workflow.rules.access.outbox_scope` of the caller's role.
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
