"""The outbox as the signed-in role may read it (:func:`workflow.rules.access.outbox_scope`): paged
in SQL (50 rows a page), filtered by status, kind, milestone, agreement and text, and
downloadable as CSV or XLSX (every matching row the reader may see, no more)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from workflow.rules.access import outbox_scope
from workflow.store.users import User
from workflow.store.views import OutboxFilter, outbox_choices, outbox_page
from workflow.web.auth import services
from workflow.web.pages.common import PAGE_SIZE, Paging, int_param, page_url, render, signed_in
from workflow.web.pages.export import FORMATS, Column, table_response

router = APIRouter(include_in_schema=False)
STATUSES = ("pending", "sent", "failed", "skipped")
COLUMNS: list[Column] = [
    ("key", "รหัส", "Key"),
    ("agreement", "คำรับรอง", "Agreement"),
    ("milestone", "กิจกรรม", "Milestone"),
    ("kind", "ประเภท", "Kind"),
    ("to", "ถึง", "To"),
    ("subject", "เรื่อง", "Subject"),
    ("send_at", "กำหนดส่ง", "Send at"),
    ("status", "สถานะ", "Status"),
    ("attempts", "จำนวนครั้ง", "Attempts"),
    ("sent_at", "ส่งเมื่อ", "Sent at"),
    ("message_id", "Message-ID", "Message-ID"),
]


@router.get("/outbox")
def outbox(
    request: Request,
    status: str = "",
    kind: str = "",
    milestone: str = "",
    agreement: str = "",
    q: str = "",
    page: str = "",
    download: str = "",
) -> Response:
    """One page of the letters the signed-in role may read."""
    user = signed_in(request)
    if not isinstance(user, User):
        return user
    scope = outbox_scope(user.role)
    where = OutboxFilter(status, kind, milestone, agreement, q.strip()[:100])
    with services(request).db.read() as conn:
        if download in FORMATS:
            _, every = outbox_page(conn, scope, where, None)
            return table_response(download, COLUMNS, every, "outbox")
        total, _ = outbox_page(conn, scope, where, 0)
        paging = Paging.of(int_param(page), total)
        _, rows = outbox_page(conn, scope, where, PAGE_SIZE, paging.offset)
        choices = outbox_choices(conn, scope)
    return render(
        request,
        "outbox.html.j2",
        user,
        rows=rows,
        paging=paging,
        kinds=choices["kinds"],
        milestones=choices["milestones"],
        statuses=STATUSES,
        selected={
            "status": status,
            "kind": kind,
            "milestone": milestone,
            "agreement": agreement,
            "q": where.text,
        },
        page_url=lambda **changes: page_url(request, **changes),
    )
