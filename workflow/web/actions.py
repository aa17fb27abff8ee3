"""What the signed-in role can do on an agreement now: buttons and links on its page.

Every event the role may fire now appears, and nothing else: the list is the engine's own
:func:`workflow.usecases.fire.events_allowed_now` (authorisation, effective time, state and guards,
exactly as :func:`workflow.usecases.fire.fire` checks them), turned into actions. Events that need
no
data are one-click POST forms (``POST /agreements/{id}/fire`` with the event and the CSRF
token); the others link to their forms (KPI set, change request, e-SAR Card, evaluation,
waiver). ``waive`` is offered only while some deliverable of the agreement can still be waived.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from workflow.config.model import Milestone
from workflow.store.repository import Agreement, Status, get_cycle, statuses
from workflow.store.users import User
from workflow.usecases.fire import events_allowed_now

ONE_CLICK = (
    "sign",
    "send_kpi_audit",
    "publish",
    "submit_kpi_template",
    "approve_results",
    "allocate_incentive",
    "agree",
    "start_negotiation",
    "approve_change",
    "reject_change",
)
ROUNDS = {"submit_sar6": "sar6", "submit_esar9": "esar9", "submit_sar12": "sar12"}
LABELS: dict[str, tuple[str, str]] = {
    "propose_kpis": ("เสนอตัวชี้วัด", "Propose KPIs"),
    "start_negotiation": ("เริ่มการเจรจา", "Start negotiation"),
    "agree": ("ตกลงคำรับรอง", "Agree"),
    "agree_set": ("ตกลงตามตัวชี้วัดที่เจรจา", "Agree with a negotiated KPI set"),
    "sign": ("ลงนาม", "Sign"),
    "publish": ("เผยแพร่คำรับรอง", "Publish"),
    "submit_kpi_template": ("ส่ง KPI Template", "Submit the KPI Template"),
    "send_kpi_audit": ("ส่งผลการตรวจสอบ KPI", "Send the KPI Audit"),
    "request_change": ("ขอเปลี่ยนแปลงตัวชี้วัด", "Request a change"),
    "approve_change": ("อนุมัติคำขอเปลี่ยนแปลง", "Approve the change"),
    "reject_change": ("ไม่อนุมัติคำขอเปลี่ยนแปลง", "Reject the change"),
    "submit_sar6": ("e-SAR Card รอบ 6 เดือน", "e-SAR Card, 6 months"),
    "submit_esar9": ("e-SAR Card รอบ 9 เดือน", "e-SAR Card, 9 months"),
    "submit_sar12": ("e-SAR Card รอบ 12 เดือน", "e-SAR Card, 12 months"),
    "waive": ("ยกเว้นกำหนดส่ง", "Waive a deliverable"),
    "evaluate": ("บันทึกผลการประเมิน", "Evaluate"),
    "approve_results": ("อนุมัติผลการประเมิน", "Approve the results"),
    "allocate_incentive": ("จัดสรรสิ่งจูงใจ", "Allocate the incentive"),
}


@dataclass(frozen=True)
class Action:
    """One thing to do: a one-click POST (``post``) or a link to a form (``link``)."""

    event: str
    kind: str  # "post" | "link"
    href: str
    label_th: str
    label_en: str

    def label(self, lang: str) -> str:
        """The button's words in ``lang`` (``th`` or ``en``)."""
        return self.label_en if lang == "en" else self.label_th


def fire_url(org_id: str) -> str:
    """Where the one-click forms post (``event`` and the CSRF token as form fields)."""
    return f"/agreements/{org_id}/fire"


def form_url(org_id: str, event: str) -> str:
    """The page of the form an event with data is fired from."""
    if event in ROUNDS:
        return f"/agreements/{org_id}/esar/{ROUNDS[event]}"
    if event in ("propose_kpis", "agree"):
        return f"/agreements/{org_id}/kpis/{event}"
    if event == "request_change":
        return f"/agreements/{org_id}/change-request"
    return f"/agreements/{org_id}/{event}"


def _action(org_id: str, event: str, kind: str, key: str | None = None) -> Action:
    th, en = LABELS[key or event]
    href = fire_url(org_id) if kind == "post" else form_url(org_id, event)
    return Action(event, kind, href, th, en)


def allowed_actions(
    conn: Connection, agreement: Agreement, user: User, at: int | None = None
) -> list[Action]:
    """Every event ``user`` may fire on ``agreement`` now, as buttons and links.

    ``at`` is the effective time (the app's clock: ``services(request).clock.now()``; the
    wall clock when omitted). Nothing is offered that :func:`workflow.usecases.fire.fire` would
    refuse for its role, time, state or guards.
    """
    when = int(time.time()) if at is None else at
    cycle = get_cycle(conn, agreement.cycle_id)
    current = statuses(conn, agreement.pk)
    org = agreement.org_id
    actions: list[Action] = []
    for event in events_allowed_now(user.role, when, agreement, cycle, current):
        if event == "waive":
            if waivable(agreement, cycle.settings.milestones, current):
                actions.append(_action(org, event, "link"))
        elif event in ONE_CLICK:
            actions.append(_action(org, event, "post"))
            if event == "agree" and agreement.state == "negotiating":
                actions.append(_action(org, event, "link", "agree_set"))
        else:
            actions.append(_action(org, event, "link"))
    return actions


def waivable(
    agreement: Agreement, milestones: Sequence[Milestone], current: Mapping[str, Status]
) -> list[str]:
    """The agreement's deliverables that are neither met, late nor waived (``waive`` targets)."""
    found: list[str] = []
    for milestone in milestones:
        status = getattr(current.get(milestone.id), "status", None)
        if (
            milestone.kind == "deliverable"
            and milestone.applies(agreement.kind)
            and status in ("pending", "missed")
        ):
            found.append(milestone.id)
    return found
