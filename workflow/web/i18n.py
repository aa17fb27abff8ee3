"""The dashboard's words: Thai first, English with ``?lang=en``.

Dates print short with the Buddhist-Era year in Thai (``30 เม.ย. 2554``) and the Christian year
in English (``30 Apr 2011``); instants print in Bangkok time.
"""

from __future__ import annotations

import datetime as dt

from workflow.rules.timeutil import to_bangkok

LANGUAGES = ("th", "en")

WORDS: dict[str, tuple[str, str]] = {
    "app": ("ระบบติดตามคำรับรองการปฏิบัติราชการ", "Performance agreements tracker"),
    "matrix": ("ตารางการปฏิบัติตามกำหนด", "Compliance matrix"),
    "outbox": ("จดหมายแจ้งเตือน", "Outbox"),
    "scores": ("คะแนน", "Scores"),
    "diagram": ("แผนภาพสถานะ", "State diagram"),
    "sign_in": ("เข้าสู่ระบบ", "Sign in"),
    "sign_out": ("ออกจากระบบ", "Sign out"),
    "token": ("โทเค็น API", "API token"),
    "token_help": (
        "ใส่โทเค็นที่ผู้ดูแลระบบออกให้ (คำสั่ง rubrong user add)",
        "Paste the token an administrator issued (rubrong user add)",
    ),
    "bad_token": ("โทเค็นไม่ถูกต้องหรือถูกเพิกถอนแล้ว", "The token is unknown or revoked"),
    "signed_in_as": ("ผู้ใช้", "Signed in as"),
    "group": ("กลุ่มจังหวัด", "Group"),
    "milestone": ("กิจกรรม", "Milestone"),
    "status": ("สถานะ", "Status"),
    "all": ("ทั้งหมด", "All"),
    "filter": ("กรอง", "Filter"),
    "clear": ("ล้าง", "Clear"),
    "agreement": ("คำรับรอง", "Agreement"),
    "organisation": ("หน่วยงาน", "Organisation"),
    "state": ("ขั้นตอน", "State"),
    "kind": ("ประเภท", "Kind"),
    "next_due": ("กำหนดส่งถัดไป", "Next due"),
    "overdue": ("เลยกำหนด (ส่วนของหน่วยงาน)", "Overdue (yours)"),
    "waiting_for_opdc": ("รอสำนักงาน ก.พ.ร. ดำเนินการ", "Waiting for OPDC"),
    "due": ("กำหนด", "Due"),
    "met_at": ("ดำเนินการเมื่อ", "Done at"),
    "late_days": ("วันทำการที่ล่าช้า", "Late business days"),
    "history": ("ประวัติ", "History"),
    "as_of": ("ณ วันที่", "As of"),
    "as_of_help": (
        "แสดงสิ่งที่บันทึกไว้จนถึงสิ้นวันที่เลือก",
        "Shows what was recorded by the end of the chosen day",
    ),
    "as_of_note": ("ข้อมูลตามที่บันทึกไว้ถึงสิ้นวันที่", "As recorded by the end of"),
    "now": ("ปัจจุบัน", "Now"),
    "show": ("แสดง", "Show"),
    "state_then": ("ขั้นตอน ณ เวลานั้น", "State then"),
    "milestones_now": ("สถานะกิจกรรม (ปัจจุบัน)", "Milestones (now)"),
    "no_entries": ("ยังไม่มีรายการ", "No entries yet"),
    "event": ("เหตุการณ์", "Event"),
    "actor": ("ผู้ดำเนินการ", "Actor"),
    "effective": ("มีผลเมื่อ", "Effective"),
    "recorded": ("บันทึกเมื่อ", "Recorded"),
    "score": ("คะแนน", "Score"),
    "composite": ("คะแนนถ่วงน้ำหนัก", "Composite"),
    "penalty": ("หักคะแนน", "Penalty"),
    "final": ("คะแนนสุทธิ", "Final"),
    "tier": ("ระดับ", "Tier"),
    "rank": ("อันดับ", "Rank"),
    "weight": ("น้ำหนัก", "Weight"),
    "result": ("ผลการดำเนินงาน", "Result"),
    "kpi": ("ตัวชี้วัด", "KPI"),
    "not_scored": ("ยังไม่มีคะแนน", "Not scored yet"),
    "to": ("ถึง", "To"),
    "subject": ("เรื่อง", "Subject"),
    "send_at": ("กำหนดส่ง", "Send at"),
    "attempts": ("จำนวนครั้ง", "Attempts"),
    "no_cycle": (
        "ยังไม่ได้โหลดรอบการประเมิน (rubrong load CONFIG)",
        "No cycle is loaded yet (rubrong load CONFIG)",
    ),
    "legend": ("คำอธิบายสี", "Legend"),
    "rows": ("แถว", "rows"),
    "verify": ("ตรวจสอบห่วงโซ่ประวัติ", "History chain"),
    "chain_ok": ("ถูกต้อง", "intact"),
    "chain_broken": ("ถูกแก้ไข!", "BROKEN!"),
    "not_found": ("ไม่พบคำรับรองนี้", "No such agreement"),
    "forbidden": ("บทบาทของท่านไม่มีสิทธิ์ดูหน้านี้", "Your role may not see this page"),
    "bad_date": ("วันที่ไม่ถูกต้อง", "Not a valid date"),
    "province": ("จังหวัด", "province"),
    "agency": ("ส่วนราชการ", "agency"),
    "mermaid_help": (
        "ข้อความ mermaid stateDiagram-v2 (นำไปแสดงผลใน mermaid.live หรือ GitHub ได้)",
        "mermaid stateDiagram-v2 text (renders in any mermaid viewer)",
    ),
    "queue": ("งานรอดำเนินการ", "Work queue"),
    "my_agreement": ("คำรับรองของหน่วยงาน", "My agreement"),
    "next_deliverables": ("สิ่งที่ต้องส่งถัดไป", "Next deliverables"),
    "days_left": ("เหลือ (วันทำการ)", "Business days left"),
    "due_today": ("ครบกำหนดวันนี้", "due today"),
    "overdue_now": ("เลยกำหนดแล้ว", "Overdue"),
    "days_late": ("ล่าช้า (วันทำการ)", "Business days late"),
    "penalty_so_far": ("คะแนนที่ถูกหักถึงวันนี้", "Penalty so far"),
    "per_day": ("ต่อวันทำการ", "per business day"),
    "nothing_due": ("ไม่มีงานค้าง", "Nothing due"),
    "nothing_overdue": ("ไม่มีงานเลยกำหนด", "Nothing overdue"),
    "mail": ("จดหมายของหน่วยงาน", "Its mail"),
    "all_mail": ("ดูจดหมายทั้งหมด", "All its mail"),
    "kpi_versions": ("ฉบับของตัวชี้วัด", "KPI versions"),
    "version": ("ฉบับที่", "Version"),
    "current": ("ฉบับปัจจุบัน", "current"),
    "source_event": ("ที่มา", "Source"),
    "name": ("ชื่อ", "Name"),
    "dimension": ("มิติ", "Dimension"),
    "actions": ("สิ่งที่ท่านทำได้ขณะนี้", "What you can do now"),
    "no_actions": ("ขณะนี้ไม่มีสิ่งที่บทบาทของท่านต้องดำเนินการ", "Nothing for your role to do now"),
    "step": ("ขั้นตอนงาน", "Step"),
    "waiting_since": ("รอตั้งแต่", "Waiting since"),
    "search": ("ค้นหา", "Search"),
    "search_help": ("รหัสหรือชื่อ", "code or name"),
    "outbox_search_help": ("เรื่อง ผู้รับ หรือรหัส", "subject, recipient or id"),
    "page": ("หน้า", "Page"),
    "of": ("จาก", "of"),
    "previous": ("ก่อนหน้า", "Previous"),
    "next": ("ถัดไป", "Next"),
    "download": ("ดาวน์โหลด", "Download"),
    "totals": ("รวม", "Totals"),
    "yours": ("งานของท่าน", "yours"),
    "queue_empty": ("ไม่มีคำรับรองที่รอในขั้นตอนนี้", "No agreement is waiting at this step"),
    "open_change": ("มีคำขอเปลี่ยนแปลงที่รอพิจารณา", "open change request"),
    "current_state": ("ขั้นตอนปัจจุบัน", "current state"),
    "kept_state": ("เหตุการณ์ที่ไม่เปลี่ยนขั้นตอน", "Events that keep the state"),
    "diagram_help": (
        "แผนภาพสร้างจากนิยามของระบบ (states/machine.py) ลูกศรโค้งคือทางลัด",
        "Drawn from the declared machine (states/machine.py); curved arrows are short cuts",
    ),
    "mermaid_text": ("ข้อความ mermaid", "mermaid text"),
    "by": ("ผู้มีสิทธิ์", "by"),
    "rows_shown": ("รายการ", "rows"),
    "province_kind": ("จังหวัด", "province"),
    "group_kind": ("กลุ่มจังหวัด", "group"),
    "agency_kind": ("ส่วนราชการ", "agency"),
    "refused": ("ดำเนินการไม่สำเร็จ", "Refused"),
    "done": ("บันทึกเรียบร้อยแล้ว", "Recorded"),
    "today": ("วันนี้", "Today"),
}

KIND_WORDS: dict[str, tuple[str, str]] = {
    "reminder": ("แจ้งเตือนล่วงหน้า", "reminder"),
    "overdue": ("แจ้งเลยกำหนด", "overdue notice"),
    "escalation": ("แจ้งผู้บังคับบัญชา", "escalation"),
    "receipt": ("ตอบรับ", "receipt"),
    "digest": ("สรุปถึง สำนักงาน ก.พ.ร.", "OPDC digest"),
    "alert": ("แจ้งเหตุขัดข้อง", "alert"),
    "province": ("จังหวัด", "province"),
    "group": ("กลุ่มจังหวัด", "group"),
    "agency": ("ส่วนราชการ", "agency"),
    "deliverable": ("สิ่งที่ต้องส่ง", "deliverable"),
    "cutoff": ("วันสิ้นสุด", "cutoff"),
    "window": ("ช่วงเวลา", "window"),
    "event": ("เหตุการณ์", "event"),
    "timer": ("ตามกำหนดเวลา", "timer"),
    "config": ("แก้ไขรอบการประเมิน", "cycle change"),
}

# Short column labels for the milestones of CONTRACT.md (a cycle's other ids show their title).
MILESTONE_SHORT: dict[str, tuple[str, str]] = {
    "propose_kpis": ("เสนอตัวชี้วัด", "Propose KPIs"),
    "negotiation": ("เจรจา", "Negotiation"),
    "sign": ("ลงนาม", "Signing"),
    "publish": ("เผยแพร่", "Publication"),
    "kpi_template": ("KPI Template", "KPI Template"),
    "kpi_audit": ("KPI Audit", "KPI Audit"),
    "change_requests": ("ขอเปลี่ยนแปลง", "Change requests"),
    "sar6": ("SAR 6 เดือน", "SAR 6 months"),
    "consultation": ("ให้คำปรึกษา", "Consultation"),
    "esar9": ("e-SAR 9 เดือน", "e-SAR 9 months"),
    "nso_survey": ("สำรวจความพึงพอใจ", "NSO survey"),
    "sar12": ("SAR 12 เดือน", "SAR 12 months"),
    "evaluation": ("ประเมินผล", "Evaluation"),
}

EVENT_WORDS: dict[str, tuple[str, str]] = {
    "propose_kpis": ("เสนอตัวชี้วัด", "propose KPIs"),
    "start_negotiation": ("เริ่มการเจรจา", "start negotiation"),
    "agree": ("ตกลงตัวชี้วัด", "agree"),
    "sign": ("ลงนาม", "sign"),
    "publish": ("เผยแพร่", "publish"),
    "submit_kpi_template": ("ส่ง KPI Template", "submit KPI template"),
    "send_kpi_audit": ("ส่งผล KPI Audit", "send KPI audit"),
    "request_change": ("ขอเปลี่ยนแปลงตัวชี้วัด", "request a change"),
    "approve_change": ("อนุมัติคำขอเปลี่ยนแปลง", "approve the change"),
    "reject_change": ("ไม่อนุมัติคำขอเปลี่ยนแปลง", "reject the change"),
    "submit_sar6": ("ส่ง SAR 6 เดือน", "submit SAR 6"),
    "submit_esar9": ("ส่ง e-SAR 9 เดือน", "submit e-SAR 9"),
    "submit_sar12": ("ส่ง SAR 12 เดือน", "submit SAR 12"),
    "waive": ("ยกเว้น", "waive"),
    "evaluate": ("ประเมินผล", "evaluate"),
    "approve_results": ("อนุมัติผล", "approve results"),
    "allocate_incentive": ("จัดสรรสิ่งจูงใจ", "allocate incentive"),
    "missed": ("เลยกำหนด", "missed"),
    "apply_changes": ("แก้ไขรอบการประเมิน", "cycle changes applied"),
}

QUEUE_STEPS: dict[str, tuple[str, str]] = {
    "negotiation": ("เจรจาตัวชี้วัด", "Negotiation"),
    "agreement": ("ตกลงตัวชี้วัด (อยู่ในบัญชี)", "Agreement (approved KPIs)"),
    "signing": ("ลงนาม", "Signing"),
    "kpi_audit": ("ตรวจสอบ KPI Template", "KPI audit"),
    "change_request": ("คำขอเปลี่ยนแปลงตัวชี้วัด", "Change requests"),
    "evaluation": ("ประเมินผล", "Evaluation"),
    "approval": ("อนุมัติผล", "Results approval"),
    "incentives": ("จัดสรรสิ่งจูงใจ", "Incentives"),
}

# What a refused action's exit code means (CONTRACT.md "Exit codes"), for flash messages.
EXIT_WORDS: dict[int, tuple[str, str]] = {
    1: ("ระบบขัดข้อง (ฐานข้อมูลไม่พร้อม) โปรดลองใหม่", "The system is unavailable; try again"),
    2: ("ข้อมูลไม่ถูกต้อง", "The data is not valid"),
    3: ("ยังดำเนินการนี้ไม่ได้ในขั้นตอนนี้", "Not allowed now (state or deadline)"),
    4: ("บทบาทของท่านไม่มีสิทธิ์ดำเนินการนี้", "Your role may not do this"),
    5: (
        "มีผู้อื่นแก้ไขคำรับรองนี้พร้อมกัน ไม่มีการบันทึก โปรดลองใหม่",
        "Someone else changed this agreement at the same time; nothing was written",
    ),
    6: ("ตรวจพบความผิดปกติของประวัติ", "Integrity failure in the history"),
}

THAI_MONTHS = (
    "ม.ค.",
    "ก.พ.",
    "มี.ค.",
    "เม.ย.",
    "พ.ค.",
    "มิ.ย.",
    "ก.ค.",
    "ส.ค.",
    "ก.ย.",
    "ต.ค.",
    "พ.ย.",
    "ธ.ค.",
)
ENGLISH_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)

STATUS_WORDS: dict[str, tuple[str, str]] = {
    "pending": ("รอดำเนินการ", "pending"),
    "met": ("ตรงเวลา", "met"),
    "late": ("ล่าช้า", "late"),
    "missed": ("เลยกำหนด", "missed"),
    "waived": ("ยกเว้น", "waived"),
    "open": ("เปิด", "open"),
    "closed": ("ปิดแล้ว", "closed"),
    "sent": ("ส่งแล้ว", "sent"),
    "failed": ("ส่งไม่สำเร็จ", "failed"),
    "skipped": ("ข้าม", "skipped"),
}

STATE_WORDS: dict[str, tuple[str, str]] = {
    "drafted": ("ร่าง", "drafted"),
    "proposed": ("เสนอตัวชี้วัดแล้ว", "proposed"),
    "negotiating": ("อยู่ระหว่างเจรจา", "negotiating"),
    "agreed": ("ตกลงแล้ว", "agreed"),
    "signed": ("ลงนามแล้ว", "signed"),
    "template_submitted": ("ส่ง KPI Template แล้ว", "template submitted"),
    "audited": ("ตรวจสอบ KPI แล้ว", "audited"),
    "sar6_submitted": ("ส่ง SAR 6 เดือนแล้ว", "SAR 6 submitted"),
    "esar9_submitted": ("ส่ง e-SAR 9 เดือนแล้ว", "e-SAR 9 submitted"),
    "sar12_submitted": ("ส่ง SAR 12 เดือนแล้ว", "SAR 12 submitted"),
    "evaluated": ("ประเมินผลแล้ว", "evaluated"),
    "results_approved": ("อนุมัติผลแล้ว", "results approved"),
    "incentive_allocated": ("จัดสรรสิ่งจูงใจแล้ว", "incentive allocated"),
}


def pick_language(query: str | None, cookie: str | None) -> str:
    """``?lang=`` wins, then the remembered cookie, then Thai."""
    for choice in (query, cookie):
        if choice in LANGUAGES:
            return str(choice)
    return "th"


class Words:
    """Look-ups for one language, handed to the templates."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._index = LANGUAGES.index(lang)

    def __call__(self, key: str) -> str:
        """A word of the interface."""
        pair = WORDS.get(key)
        return key if pair is None else pair[self._index]

    def status(self, value: str | None) -> str:
        """A milestone or outbox status."""
        pair = STATUS_WORDS.get(value or "")
        return (value or "") if pair is None else pair[self._index]

    def state(self, value: str | None) -> str:
        """An agreement state."""
        pair = STATE_WORDS.get(value or "")
        return (value or "") if pair is None else pair[self._index]

    def pick(self, pair: tuple[str, str] | None, fallback: str) -> str:
        """The current language's half of ``pair`` (``fallback`` when there is none)."""
        return fallback if pair is None else pair[self._index]

    def kind(self, value: str | None) -> str:
        """A mail, organisation, milestone or history-entry kind."""
        return self.pick(KIND_WORDS.get(value or ""), value or "")

    def event(self, value: str | None) -> str:
        """An event name."""
        return self.pick(EVENT_WORDS.get(value or ""), value or "")

    def step(self, value: str) -> str:
        """A step of the OPDC work queue."""
        return self.pick(QUEUE_STEPS.get(value), value)

    def exit_code(self, code: int) -> str:
        """What a refusal's exit code means."""
        return self.pick(EXIT_WORDS.get(code), str(code))

    def title(self, title_th: str | None, title_en: str | None) -> str:
        """A title: Thai, or English on ``?lang=en`` when one is given."""
        if self.lang == "en" and title_en:
            return title_en
        return title_th or title_en or ""

    def short(self, milestone: str, title_th: str | None, title_en: str | None) -> str:
        """A milestone's short label (its title when the id is not one of CONTRACT.md's)."""
        pair = MILESTONE_SHORT.get(milestone)
        return pair[self._index] if pair else self.title(title_th, title_en)

    def date(self, value: dt.date | str | None) -> str:
        """``30 เม.ย. 2554`` (Thai, B.E.) or ``30 Apr 2011``; ``—`` for nothing."""
        if value is None or value == "":
            return "—"
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
        if self.lang == "th":
            return f"{day.day} {THAI_MONTHS[day.month - 1]} {day.year + 543}"
        return f"{day.day} {ENGLISH_MONTHS[day.month - 1]} {day.year}"

    def instant(self, value: str | int | None) -> str:
        """An instant (ISO text or epoch seconds) as a date and Bangkok time of day."""
        if value is None or value == "":
            return "—"
        moment = (
            to_bangkok(value)
            if isinstance(value, int)
            else dt.datetime.fromisoformat(str(value)).astimezone(to_bangkok(0).tzinfo)
        )
        return f"{self.date(moment.date())} {moment:%H:%M}"
