"""What the forms share: the signed-in user and CSRF, reading a form, firing, refusals.

Every form posts to the page it came from; the page checks the CSRF token (the session's,
:func:`workflow.web.session.check_csrf`), builds the event's data and fires it through
:func:`workflow.usecases.fire.fire` with the signed-in role, exactly as the API would. A refusal is
shown with the CLI exit code's meaning (2 bad data, 3 not allowed now with the rule or the
allowed events, 4 not authorised, 5 changed by someone else), the typed values kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import jinja2
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from workflow.rules.access import Reach, Resource, reach
from workflow.rules.errors import BadInput, RubrongError
from workflow.store.repository import Agreement, get_cycle, statuses
from workflow.store.users import User
from workflow.usecases.fire import FireRequest, events_allowed_now, fire
from workflow.web.api import find_agreement
from workflow.web.auth import Services, hide, request_action, services
from workflow.web.limits import MAX_BODY
from workflow.web.pages.common import templates
from workflow.web.problems import status_for
from workflow.web.session import CSRF_FIELD, check_csrf

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

# The forms' own words (Thai, English); the pages' words are workflow.web.i18n's.
WORDS: dict[str, tuple[str, str]] = {
    "save_draft": ("บันทึกร่าง", "Save draft"),
    "submit": ("ส่งรายงาน", "Submit"),
    "draft_saved": ("บันทึกร่างแล้ว", "Draft saved"),
    "draft_of": ("ร่างบันทึกเมื่อ", "Draft saved at"),
    "stale": (
        "ร่างนี้จัดทำสำหรับชุดตัวชี้วัดฉบับเก่า (ฉบับที่ {old}) ขณะนี้เป็นฉบับที่ {new} กรุณาตรวจสอบ",
        "This draft was made for an older KPI version ({old}); the current one is {new}: check it",
    ),
    "dropped": ("ตัวชี้วัดที่ไม่อยู่ในชุดปัจจุบันแล้ว", "KPIs no longer in the current set"),
    "result_to_date": ("ผลการดำเนินงานถึงปัจจุบัน", "Result to date"),
    "level": ("ระดับที่ประเมินตนเอง (1–5)", "Self-assessed level (1–5)"),
    "note": ("ความก้าวหน้า", "Progress note"),
    "evidence": ("หลักฐานอ้างอิง", "Evidence reference"),
    "document": ("เอกสารแนบ (PDF, DOCX, XLSX)", "Document (PDF, DOCX, XLSX)"),
    "document_kept": ("เอกสารที่แนบไว้", "Attached document"),
    "document_limit": ("ขนาดไม่เกิน {limit} MB", "at most {limit} MB"),
    "submitted": ("ส่งรายงานแล้ว (รายการประวัติที่ {seq})", "Submitted (history entry #{seq})"),
    "read_only": ("ท่านดูได้อย่างเดียว", "You can only read this card"),
    "not_now": (
        "ขณะนี้ยังส่งรายงานรอบนี้ไม่ได้ (บันทึกร่างได้)",
        "This round cannot be submitted now (drafts can be saved)",
    ),
    "no_kpis": ("คำรับรองนี้ยังไม่มีตัวชี้วัด", "The agreement has no KPI set yet"),
    "refused": ("ไม่สำเร็จ", "Refused"),
    "card_round": ("e-SAR Card รอบ", "e-SAR Card,"),
    "round_sar6": ("6 เดือน", "6 months"),
    "round_esar9": ("9 เดือน", "9 months"),
    "round_sar12": ("12 เดือน", "12 months"),
    "dir_higher": ("ยิ่งมากยิ่งดี", "higher is better"),
    "dir_lower": ("ยิ่งน้อยยิ่งดี", "lower is better"),
    "all_cards": ("e-SAR Card ทุกหน่วยงาน", "Every organisation's e-SAR Card"),
    "draft_mark": ("ร่าง", "draft"),
    "none": ("ยังไม่มี", "none yet"),
    "back": ("กลับไปหน้าคำรับรอง", "Back to the agreement"),
    "add_row": ("เพิ่มตัวชี้วัด", "Add a KPI"),
    "remove_row": ("ลบ", "Remove"),
    "weights_rule": (
        "น้ำหนักรวมต้องเท่ากับ 100 และแต่ละมิติต้องเท่ากับน้ำหนักของมิติ",
        "Weights must sum to 100, and each dimension to its weight",
    ),
    "levels_rule": (
        "เกณฑ์ 5 ระดับต้องเพิ่มขึ้นเมื่อค่ามากดีกว่า และลดลงเมื่อค่าน้อยดีกว่า",
        "The five levels increase for 'higher', decrease for 'lower'",
    ),
    "reason": ("เหตุผล", "Reason"),
    "reason_external": ("ปัจจัยภายนอกที่ควบคุมไม่ได้", "uncontrollable external factors"),
    "reason_budget": ("ไม่ได้รับงบประมาณหรือได้รับไม่เพียงพอ", "no or insufficient budget"),
    "explanation": ("คำชี้แจง", "Explanation"),
    "cutoff": ("ยื่นคำขอได้ถึงวันที่", "Requests accepted until"),
    "send": ("ส่ง", "Send"),
    "milestone": ("กิจกรรม", "Milestone"),
    "results_from_card": (
        "ค่าเริ่มต้นมาจาก e-SAR Card รอบ 12 เดือน",
        "Prefilled from the 12-month e-SAR Card",
    ),
}


def word(lang: str, key: str, **values: Any) -> str:
    """One of the forms' words in ``lang``, with ``{placeholders}`` filled in."""
    pair = WORDS.get(key)
    text = key if pair is None else pair[1 if lang == "en" else 0]
    return text.format(**values) if values else text


@dataclass
class Outcome:
    """How a submission went: ``status`` (HTTP), the refusal's ``code`` and ``message``, and
    the messages by field (``card[0].result``, ``kpis[1]``, ``document``, …)."""

    status: int = 200
    code: int = 0
    message: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether nothing was refused."""
        return self.code == 0


def refused(error: RubrongError, errors: dict[str, str] | None = None) -> Outcome:
    """A refusal as shown on a form (HTTP status of the exit code, as the API answers it)."""
    status = 413 if type(error).__name__ == "DocumentTooLarge" else status_for(error)
    return Outcome(status, error.exit_code, error.message, dict(errors or {}))


async def read_form(request: Request, max_files: int = 0) -> FormData:
    """The posted form (urlencoded or multipart) with its CSRF token checked (403 otherwise)."""
    try:
        form = await request.form(max_files=max_files, max_fields=2000, max_part_size=MAX_BODY)
    except HTTPException as exc:
        raise BadInput(f"the form is malformed: {exc.detail}") from exc
    token = form.get(CSRF_FIELD)
    check_csrf(request, token if isinstance(token, str) else None)
    return form


def text(form: FormData, name: str) -> str:
    """A text field ('' when absent or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def number_or_text(value: str) -> Any:
    """A typed number as a JSON number; anything else as typed (the engine then says what is
    wrong with it, with every other problem, in the usual order of checks)."""
    if not _NUMBER.fullmatch(value):
        return value
    number = float(value)
    if number.is_integer() and re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    return number


def own_or_reader(svc: Services, request: Request, user: User, agreement: Agreement) -> bool:
    """Whether ``user`` may see this agreement's drafts and documents; True when it is the
    agreement's own party (who may also edit them). Anyone else gets 404 (logged)."""
    found = reach(user.role, Resource.ESAR_DRAFTS)
    own = user.role.owns(agreement.org_id, agreement.kind)
    if own:
        return True
    if found is Reach.ALL:
        return False
    hide(
        svc,
        user,
        agreement.org_id,
        request_action(request),
        "may not read another organisation's e-SAR Card drafts or documents",
        f"unknown agreement page {agreement.org_id!r}",
    )


def agreement_of(svc: Services, org_id: str) -> Agreement:
    """The agreement in the latest cycle, or 404."""
    with svc.db.read() as conn:
        return find_agreement(conn, None, org_id)


def allowed_now(svc: Services, user: User, agreement: Agreement) -> list[str]:
    """The events ``user`` may fire on ``agreement`` now (the engine's own checks)."""
    with svc.db.read() as conn:
        cycle = get_cycle(conn, agreement.cycle_id)
        current = statuses(conn, agreement.pk)
    return events_allowed_now(user.role, svc.clock.now(), agreement, cycle, current)


async def fire_as(
    svc: Services, user: User, agreement: Agreement, event: str, data: dict[str, Any] | None
) -> Agreement:
    """Fire ``event`` as the signed-in role (never with an effective time: now)."""
    request = FireRequest(agreement.org_id, event, str(user.role), None, data, agreement.cycle_id)
    return await run_in_threadpool(fire, svc.db, svc.clock, request)


def request_services(request: Request) -> Services:
    """The app's services."""
    return services(request)


@jinja2.pass_context
def _form_word(context: jinja2.runtime.Context, key: str, **values: Any) -> str:
    return word(str(context.get("lang", "th")), key, **values)


templates.env.globals["fw"] = _form_word  # the forms' words in templates: {{ fw("submit") }}
