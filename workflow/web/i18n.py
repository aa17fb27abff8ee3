"""The dashboard's words: Thai first, English with ``?lang=en``."""

from __future__ import annotations

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
    "overdue": ("เลยกำหนด", "Overdue"),
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
    "bad_date": ("วันที่ไม่ถูกต้อง", "Not a valid date"),
    "province": ("จังหวัด", "province"),
    "agency": ("ส่วนราชการ", "agency"),
    "mermaid_help": (
        "ข้อความ mermaid stateDiagram-v2 (นำไปแสดงผลใน mermaid.live หรือ GitHub ได้)",
        "mermaid stateDiagram-v2 text (renders in any mermaid viewer)",
    ),
}

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
