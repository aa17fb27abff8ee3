"""``status`` and ``milestones`` rows: the one implementation, written against a tiny port.

Everything here is plain SQL run through a ``Reader``: the driver's own connection for the
CLI's fast read path (``workflow.store.dbapi``: no SQLAlchemy to import), or a SQLAlchemy
connection (``workflow.store.database.ConnectionReader``) for the web, the API and every other
caller
of ``workflow.store.views``. Both print the same rows because both run these statements.

Statements use named ``:name`` parameters; ``in_paramstyle`` rewrites them for drivers that
want ``%(name)s`` (psycopg). So that rewrite stays trivial, the SQL here holds no other colon
and no ``%``.

A read that answers for named agreements touches those agreements' rows only (the
``milestone_status`` primary key starts with ``agreement_pk``): one agreement's status costs
the same in a cycle of 93 agreements as in one of 10⁵.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from workflow.rules.errors import BadInput, quoted
from workflow.rules.records import Agreement
from workflow.rules.timeutil import format_instant

NO_CYCLE = "no cycle is loaded: run `rubrong load CONFIG` first"


class Reader(Protocol):
    """Runs one read statement and returns its rows as tuples (positional access only)."""

    def rows(self, sql: str, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """The rows of ``sql`` (``:name`` parameters, bound from ``params``)."""
        ...

    def stream(self, sql: str, params: Mapping[str, Any]) -> Iterator[Sequence[Any]]:
        """The rows of ``sql`` as they are fetched, in batches: constant memory however many
        (a server-side cursor on PostgreSQL)."""
        ...


STREAM_BATCH = 1000  # rows fetched at a time by ``Reader.stream``

_NAMED = re.compile(r":(\w+)")
_PYFORMAT: dict[str, str] = {}


def in_paramstyle(sql: str, paramstyle: str) -> str:
    """``sql`` with its ``:name`` parameters as the driver wants them.

    sqlite3 takes ``:name`` itself (whatever its advertised ``qmark``); ``pyformat`` and
    ``format`` drivers (psycopg) get ``%(name)s``.
    """
    if paramstyle not in ("pyformat", "format"):
        return sql
    found = _PYFORMAT.get(sql)
    if found is None:
        found = _PYFORMAT[sql] = _NAMED.sub(r"%(\1)s", sql)
    return found


def cycle_id(reader: Reader, wanted: str | None) -> str:
    """The cycle ``wanted``, or the latest loaded one (no id, or an empty one); exit 2 when
    there is none or it is unknown."""
    if wanted:
        if not reader.rows("SELECT id FROM cycles WHERE id = :id", {"id": wanted}):
            raise BadInput(f"unknown cycle {quoted(wanted)}")
        return wanted
    found = reader.rows("SELECT id FROM cycles ORDER BY load_order DESC LIMIT 1", {})
    if not found:
        raise BadInput(NO_CYCLE)
    return str(found[0][0])


# The columns of ``Agreement``, in its field order.
_AGREEMENTS = (
    "SELECT a.pk, a.cycle_id, a.org_id, o.kind, o.group_id, o.name_th, o.name_en, o.email, "
    "o.supervisor_email, a.state, a.version, a.published, a.kpis, a.kpi_version, "
    "a.change_request, a.results, a.tier, a.last_event_at FROM agreements a "
    "JOIN organisations o ON o.cycle_id = a.cycle_id AND o.id = a.org_id "
    "WHERE a.cycle_id = :cycle "
)


def _agreement(row: Sequence[Any]) -> Agreement:
    """A row of ``_AGREEMENTS`` as an ``Agreement`` (``published`` is 0/1 on SQLite)."""
    values = list(row)
    values[11] = bool(values[11])
    return Agreement(*values)


def _marks(prefix: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """``(:p0, :p1, …)`` and its parameters (``(NULL)`` for no values: matches nothing)."""
    params = {f"{prefix}{i}": value for i, value in enumerate(values)}
    return "(" + (", ".join(f":{name}" for name in params) or "NULL") + ")", params


def list_agreements(reader: Reader, cycle: str, org_ids: list[str] | None) -> list[Agreement]:
    """Agreements of ``cycle`` in id order (all, or the named ones; unknown names → exit 2)."""
    sql, params = _AGREEMENTS, {"cycle": cycle}
    if org_ids:
        marks, named = _marks("org", org_ids)
        sql, params = f"{sql}AND a.org_id IN {marks} ", {**params, **named}
    found = [_agreement(row) for row in reader.rows(sql + "ORDER BY a.org_id", params)]
    if org_ids:
        known = {agreement.org_id for agreement in found}
        if missing := [ident for ident in org_ids if ident not in known]:
            raise BadInput(f"unknown agreement {quoted(missing[0])} in cycle {cycle}")
    return found


def _statuses_of(cycle: str, pks: list[int] | None) -> tuple[str, dict[str, Any]]:
    """The WHERE clause picking milestone statuses: the whole cycle's, or (``pks``) those of
    some agreements only, found by the primary key (an agreement's statuses are all of its
    cycle; a ``cycle_id`` term here would steer SQLite to the sweep index over the cycle)."""
    if pks is None:
        return "s.cycle_id = :cycle ", {"cycle": cycle}
    marks, params = _marks("pk", pks)
    return f"s.agreement_pk IN {marks} ", params


_JOIN = (
    "FROM milestone_status s JOIN cycle_milestones m "
    "ON m.cycle_id = s.cycle_id AND m.id = s.milestone_id WHERE "
)


def next_due(reader: Reader, cycle: str, pks: list[int] | None) -> dict[int, dict[str, Any]]:
    """The organisation's own earliest pending deliverable per agreement."""
    where, params = _statuses_of(cycle, pks)
    rows = reader.rows(
        "SELECT s.agreement_pk, m.id, m.due "
        + _JOIN
        + where
        + "AND s.status = 'pending' AND m.kind = 'deliverable' AND m.actor = 'organisation' "
        "AND m.due IS NOT NULL ORDER BY s.agreement_pk, m.due, m.position",
        params,
    )
    found: dict[int, dict[str, Any]] = {}
    for agreement_pk, milestone, due in rows:
        found.setdefault(agreement_pk, {"milestone": milestone, "due": due})
    return found


def overdue(reader: Reader, cycle: str, pks: list[int] | None) -> dict[int, list[tuple[str, str]]]:
    """Missed milestones per agreement, with whose move each is (the milestone's actor)."""
    where, params = _statuses_of(cycle, pks)
    rows = reader.rows(
        "SELECT s.agreement_pk, s.milestone_id, m.actor "
        + _JOIN
        + where
        + "AND s.status = 'missed' ORDER BY s.agreement_pk, m.position",
        params,
    )
    found: dict[int, list[tuple[str, str]]] = {}
    for agreement_pk, milestone, actor in rows:
        found.setdefault(agreement_pk, []).append((milestone, actor))
    return found


def status_rows(
    reader: Reader, cycle_id_or_latest: str | None, org_ids: list[str] | None
) -> list[dict[str, Any]]:
    """``status``: one row per agreement (named ones read only their own rows)."""
    cycle = cycle_id(reader, cycle_id_or_latest)
    agreements = list_agreements(reader, cycle, org_ids)
    pks = [a.pk for a in agreements] if org_ids else None
    due = next_due(reader, cycle, pks)
    missed = overdue(reader, cycle, pks)
    return [status_row(a, due.get(a.pk), missed.get(a.pk, [])) for a in agreements]


def agreement_status(reader: Reader, agreement: Agreement) -> dict[str, Any]:
    """``status`` of a single agreement (what ``fire --json`` prints)."""
    pks = [agreement.pk]
    return status_row(
        agreement,
        next_due(reader, agreement.cycle_id, pks).get(agreement.pk),
        overdue(reader, agreement.cycle_id, pks).get(agreement.pk, []),
    )


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


def milestone_rows(
    reader: Reader, cycle_id_or_latest: str | None, org_ids: list[str] | None
) -> list[dict[str, Any]]:
    """``milestones``: one row per agreement × milestone that concerns it (named agreements
    read only their own rows)."""
    cycle = cycle_id(reader, cycle_id_or_latest)
    agreements = {a.pk: a for a in list_agreements(reader, cycle, org_ids)}
    where, params = _statuses_of(cycle, list(agreements) if org_ids else None)
    rows = reader.rows(
        "SELECT s.agreement_pk, s.status, s.met_at, s.late_business_days, m.id, m.kind, "
        "m.actor, m.due, m.published_due, m.start, m.title_th, m.title_en "
        + _JOIN
        + where
        + "ORDER BY s.agreement_pk, m.position",
        params,
    )
    out: list[dict[str, Any]] = []
    for pk, status, met_at, late, milestone, kind, actor, due, published, start, th, en in rows:
        agreement = agreements.get(pk)
        if agreement is None:
            continue
        entry: dict[str, Any] = {
            "agreement": agreement.org_id,
            "milestone": milestone,
            "kind": kind,
            "actor": actor,
            "title_th": th,
            "title_en": en,
            "due": due,
            "published_due": published,
            "status": status,
            "met_at": format_instant(met_at),
            "late_business_days": late,
        }
        if kind == "window":
            entry["start"] = start
        out.append(entry)
    out.sort(key=lambda item: item["agreement"])  # stable: milestone order kept per agreement
    return out
