"""Letters as tests make and read them.

``outgoing(number)`` is a realistic reminder (Chiang Mai's SAR 6, due ``DUE``, sent at
``SENT_AT``) with an ``.ics`` attachment, ready for a mailer. ``running_text(text, html)`` is
what a reader reads of a letter (the text, and the HTML without tags) minus the fields that may
carry ids (``ID_FIELDS``) and links or addresses (``LINKS``); in it ``DOUBLED_TH`` and
``DOUBLED_EN`` find a doubled verb and ``INTERNAL_ID`` an internal id (``TH-50``, ``sar6``).
"""

from __future__ import annotations

import datetime as dt
import html
import re

from notifications.ics import deadline_ics
from notifications.message import OutgoingMail
from notifications.render import MailContext, Recipient, render_mail
from workflow.rules.timeutil import BANGKOK

DUE = dt.date(2011, 4, 30)  # the sample reminder's deadline and send time
SENT_AT = dt.datetime(2011, 4, 23, 9, 0, tzinfo=BANGKOK)

# A doubled verb (``ยังมิได้จัดส่งส่ง…``, ``submit submit``) or an internal id in running text.
DOUBLED_TH = re.compile(
    r"(จัดส่ง|ส่ง|เสนอ|กรอก|เผยแพร่|ยื่น|ดำเนินการ|จัดให้มี|ได้รับ|ด้วย)"
    r"(จัดส่ง|ส่ง|เสนอ|กรอก|เผยแพร่|ยื่น|ดำเนินการ|จัดให้มี)"
)
DOUBLED_EN = re.compile(r"\b([A-Za-z]+)\s+\1\b", re.IGNORECASE | re.ASCII)
INTERNAL_ID = re.compile(
    r"\bTH-\d\d\b|\b(propose_kpis|kpi_template|kpi_audit|sar6|sar12|esar9|change_requests|"
    r"nso_survey|north-upper-1)\b"
)
# Fields that may carry ids: the reference numbers, the re-send command, the server's reply.
ID_FIELDS = re.compile(
    r"^(เลขที่อ้างอิง|Reference|คำสั่ง:|Command:|สาเหตุล่าสุด:|Last error:|X-Rubrong-Key:|To:|Cc:|"
    r"Message-ID:|In-Reply-To:|References:)"
)
LINKS = re.compile(r"https?://\S+|[\w.+-]+@[\w.-]+")


def outgoing(
    number: int = 0, *, to: str = "saraban@chiangmai.go.th", ics: bool = True
) -> OutgoingMail:
    """A realistic reminder with an .ics attachment."""
    rendered = render_mail(
        MailContext(
            kind="reminder",
            cycle_id="2554",
            cycle_name_th="คำรับรองการปฏิบัติราชการ ประจำปีงบประมาณ พ.ศ. 2554",
            recipient=Recipient("province", "เชียงใหม่", "Chiang Mai"),
            organisation_id="TH-50",
            organisation_name_th="จังหวัดเชียงใหม่",
            milestone_id="sar6",
            milestone_title_th="รายงานการประเมินผลตนเอง รอบ 6 เดือน",
            milestone_title_en="SAR 6 months",
            due=DUE,
            offset_days=7,
            event_at=None,
            late_business_days=None,
        )
    )
    key = f"2554/TH-50/sar6/2011-04-30/reminder/7/{number}"
    attachment = deadline_ics(
        uid=f"2554.TH-50.sar6.{number}@rubrong",
        summary="ครบกำหนด: รายงานการประเมินผลตนเอง รอบ 6 เดือน",
        description="คำรับรองการปฏิบัติราชการ 2554",
        due=DUE,
        stamp=SENT_AT,
    )
    return OutgoingMail(
        key=key,
        sender="สำนักงาน ก.พ.ร. <noreply@opdc.go.th>",
        to=to,
        message_id=f"<2554.TH-50.sar6.2011-04-30.reminder.7.{number:04d}.0123456789abcdef@rubrong>",
        date=SENT_AT,
        rendered=rendered,
        ics=attachment if ics else None,
    )


def running_text(text: str, markup: str) -> list[str]:
    """The lines a reader reads (text, and HTML without tags), minus the fields with ids."""
    lines = text.splitlines()
    lines += html.unescape(re.sub(r"<[^>]+>", "", markup)).splitlines()
    return [LINKS.sub("", line) for line in lines if not ID_FIELDS.match(line.strip())]
