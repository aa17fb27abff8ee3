"""Subject lines: Thai `` / `` English, computed from the milestone and the notice alone.

Independent of the recipient, so the engine computes one subject per timer instant and reuses
it for every organisation (``workflow.usecases.tick``), and a letter re-rendered later keeps it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from notifications.dates import english_date, thai_date

KINDS = ("reminder", "overdue", "escalation", "receipt", "digest", "alert", "correction")
"""Every kind of letter; each has ``templates/mail/<kind>.txt.j2`` and ``.html.j2``."""

_SUBJECT_PREFIX_TH = "คำรับรองฯ"
_KIND_TH = {"reminder": "แจ้งเตือน", "overdue": "เกินกำหนด", "escalation": "เร่งรัด"}
_KIND_EN = {"reminder": "reminder", "overdue": "overdue", "escalation": "escalation"}


def days_left_th(days: int) -> str:
    """Thai for the days left before a due date (subject lines)."""
    return "ครบกำหนดวันนี้" if days == 0 else f"อีก {days} วัน"


def days_left_en(days: int) -> str:
    """English for the days left before a due date."""
    if days == 0:
        return "due today"
    return f"{days} day left" if days == 1 else f"{days} days left"


def days_over_th(days: int) -> str:
    """Thai for the days past a due date."""
    return f"เกินกำหนด {days} วัน"


def days_over_en(days: int) -> str:
    """English for the days past a due date."""
    return f"{days} day overdue" if days == 1 else f"{days} days overdue"


def _need(value: Any, name: str, kind: str) -> Any:
    if value is None:
        raise ValueError(f"a {kind} subject needs {name}")
    return value


def subject_for(
    kind: str,
    *,
    cycle_id: str,
    milestone_id: str | None,
    milestone_title_th: str | None,
    milestone_title_en: str | None,
    due: dt.date | None,
    offset_days: int | None,
    digest_of: str | None = None,
    previous_due: dt.date | None = None,
) -> str:
    """The subject line (Thai `` / `` English); never depends on the recipient.

    Raises ``ValueError`` for an unknown kind or a value the kind needs left as ``None``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}; expected one of {', '.join(KINDS)}")
    prefix = f"[{_SUBJECT_PREFIX_TH} {cycle_id}]"
    if kind == "alert":
        return f"{prefix} การส่งอีเมลแจ้งเตือนไม่สำเร็จ / Notification delivery failed"
    title_th = str(_need(milestone_title_th, "milestone_title_th", kind))
    title_en = milestone_title_en or str(_need(milestone_id, "milestone_id", kind))
    if kind == "receipt":
        if due is None:
            return f"{prefix} ยืนยันการรับ: {title_th} / Receipt: {title_en}"
        return (
            f"{prefix} ยืนยันการรับ: {title_th} (กำหนด {thai_date(due)})"
            f" / Receipt: {title_en} (due {english_date(due)})"
        )
    day = _need(due, "due", kind)
    if kind == "correction":
        was = _need(previous_due, "previous_due", kind)
        return (
            f"{prefix} แจ้งเปลี่ยนกำหนด: {title_th} ครบกำหนดใหม่ {thai_date(day)}"
            f" (เดิม {thai_date(was)}) / Deadline changed: {title_en} now due"
            f" {english_date(day)} (was {english_date(was)})"
        )
    offset = int(_need(offset_days, "offset_days", kind))
    of = kind
    if kind == "digest":
        of = str(_need(digest_of, "digest_of", kind))
        if of not in _KIND_TH:
            raise ValueError(f"digest_of must be reminder, overdue or escalation, not {of!r}")
    if of == "reminder":
        when_th, when_en = days_left_th(offset), days_left_en(offset)
    else:
        when_th, when_en = days_over_th(offset), days_over_en(offset)
    due_th, due_en = thai_date(day), english_date(day)
    if kind == "digest":
        return (
            f"{prefix} สรุปรายการค้าง ({_KIND_TH[of]}): {title_th} ครบกำหนด {due_th} ({when_th})"
            f" / Pending digest ({_KIND_EN[of]}): {title_en} due {due_en} ({when_en})"
        )
    head_en = {"reminder": "Reminder", "overdue": "Overdue", "escalation": "Escalation"}[kind]
    return (
        f"{prefix} {_KIND_TH[kind]}: {title_th} ครบกำหนด {due_th} ({when_th})"
        f" / {head_en}: {title_en} due {due_en} ({when_en})"
    )
