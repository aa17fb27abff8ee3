"""The organisation × milestone compliance matrix: filters, search, paging, per-milestone
totals and CSV/XLSX downloads of what the filters select (agreements are public documents)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workflow.rules.access import Resource
from workflow.store.repository import get_cycle, latest_cycle_id
from workflow.store.users import User
from workflow.store.views import milestone_rows, status_rows
from workflow.web.auth import services
from workflow.web.i18n import MILESTONE_SHORT
from workflow.web.pages.common import Paging, int_param, page_url, render, signed_in
from workflow.web.pages.export import FORMATS, Column, table_response

router = APIRouter(include_in_schema=False)
STATUS_CHOICES = ("pending", "met", "late", "missed", "waived", "open", "closed")
TOTALS = ("met", "late", "missed", "pending", "waived")


def _columns(milestones: list[Any]) -> list[Column]:
    """Download columns: the organisation, then one status column per milestone."""
    columns: list[Column] = [
        ("agreement", "รหัส", "Agreement"),
        ("kind", "ประเภท", "Kind"),
        ("group", "กลุ่มจังหวัด", "Group"),
        ("name_th", "ชื่อ", "Name"),
        ("state", "ขั้นตอน", "State"),
    ]
    for m in milestones:
        th, en = MILESTONE_SHORT.get(m.id, (m.title_th, m.title_en or m.id))
        columns.append((m.id, th, en))
        columns.append((f"{m.id}_late_days", f"{th} (วันทำการที่ล่าช้า)", f"{en} (late days)"))
    return columns


@router.get("/matrix")
def matrix(
    request: Request,
    group: str = "",
    milestone: str = "",
    status: str = "",
    q: str = "",
    page: str = "",
    download: str = "",
) -> Response:
    """The compliance matrix filtered by group, milestone, status and text; totals per column."""
    user = signed_in(request, Resource.AGREEMENTS, Resource.MILESTONES)
    if not isinstance(user, User):
        return user
    q = q.strip()[:100]
    with services(request).db.read() as conn:
        if latest_cycle_id(conn) is None:
            return render(request, "matrix.html.j2", user, cycle=None)
        cycle = get_cycle(conn, None)
        agreements = status_rows(conn, cycle.id, None)
        cells = {(r["agreement"], r["milestone"]): r for r in milestone_rows(conn, cycle.id, None)}
    milestones = list(cycle.settings.milestones)
    columns = [m for m in milestones if not milestone or m.id == milestone]
    groups = [
        (a["agreement"], a["name_th"], a["name_en"]) for a in agreements if a["kind"] == "group"
    ]
    needle = q.casefold()
    rows: list[dict[str, Any]] = []
    for agreement in agreements:
        if group and group not in (agreement["group"], agreement["agreement"]):
            continue
        text = f"{agreement['agreement']} {agreement['name_th']} {agreement['name_en'] or ''}"
        if needle and needle not in text.casefold():
            continue
        shown = [cells.get((agreement["agreement"], m.id)) for m in columns]
        if status and not any(cell and cell["status"] == status for cell in shown):
            continue
        rows.append({"agreement": agreement, "cells": shown})
    if download in FORMATS:
        flat = []
        for row in rows:
            item = dict(row["agreement"])
            for m, cell in zip(columns, row["cells"], strict=True):
                item[m.id] = cell["status"] if cell else None
                item[f"{m.id}_late_days"] = cell["late_business_days"] if cell else None
            flat.append(item)
        return table_response(download, _columns(columns), flat, f"matrix-{cycle.id}")
    totals = [
        Counter(cell["status"] for row in rows if (cell := row["cells"][index]) is not None)
        for index in range(len(columns))
    ]
    paging = Paging.of(int_param(page), len(rows))
    return render(
        request,
        "matrix.html.j2",
        user,
        cycle=cycle.settings,
        milestones=milestones,
        columns=columns,
        groups=groups,
        rows=paging.rows(rows),
        paging=paging,
        totals=totals,
        total_kinds=TOTALS,
        total=len(agreements),
        statuses=STATUS_CHOICES,
        selected={"group": group, "milestone": milestone, "status": status, "q": q},
        page_url=lambda **changes: page_url(request, **changes),
    )
