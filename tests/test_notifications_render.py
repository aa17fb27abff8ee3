"""The mail renderer: every kind in Thai then English, strict templates, escaped HTML."""

from __future__ import annotations

import dataclasses
import datetime as dt

import jinja2
import pytest

from notifications.render import (
    TEMPLATE_VERSION,
    MailContext,
    Recipient,
    environment,
    render_mail,
    salutation_th,
)
from notifications.subjects import KINDS, subject_for
from workflow.rules.timeutil import BANGKOK

SEPARATOR = "----- English -----"
PROVINCE = Recipient("province", "เชียงใหม่", "Chiang Mai")
OPDC = Recipient("opdc", "สำนักงาน ก.พ.ร.", "OPDC")
SAR6_TH = "รายงานการประเมินผลตนเอง รอบ 6 เดือน"


def context(kind: str, **changes: object) -> MailContext:
    """A complete, realistic context for ``kind``; ``changes`` override fields."""
    base = MailContext(
        kind=kind,
        cycle_id="2554",
        cycle_name_th="คำรับรองการปฏิบัติราชการ ประจำปีงบประมาณ พ.ศ. 2554",
        recipient=PROVINCE,
        organisation_id="TH-50",
        organisation_name_th="จังหวัดเชียงใหม่",
        milestone_id="sar6",
        milestone_title_th=SAR6_TH,
        milestone_title_en="SAR 6 months",
        due=dt.date(2011, 4, 30),
        offset_days=7,
        event_at=None,
        late_business_days=None,
    )
    per_kind: dict[str, dict[str, object]] = {
        "escalation": {"recipient": Recipient("supervisor", "จังหวัดเชียงใหม่", "Chiang Mai")},
        "receipt": {
            "offset_days": None,
            "event_at": dt.datetime(2011, 5, 3, 10, 15, tzinfo=BANGKOK),
            "late_business_days": 1,
        },
        "digest": {
            "recipient": OPDC,
            "organisation_id": None,
            "organisation_name_th": None,
            "pending": (("TH-50", "จังหวัดเชียงใหม่"), ("TH-57", "จังหวัดเชียงราย")),
            "digest_of": "overdue",
        },
        "correction": {"offset_days": None, "previous_due": dt.date(2011, 4, 23)},
        "alert": {
            "recipient": OPDC,
            "alert_key": "2554/TH-50/sar6/2011-04-30/reminder/7",
            "alert_reason": "550 5.1.1 no such user",
        },
    }
    return dataclasses.replace(base, **{**per_kind.get(kind, {}), **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_thai_then_english(kind: str) -> None:
    ctx = context(kind)
    mail = render_mail(ctx)
    assert mail.template == f"mail/{kind}"
    assert mail.version == TEMPLATE_VERSION
    thai, sep, english = mail.text.partition(SEPARATOR)
    assert sep, "the text body separates Thai from English"
    assert thai.strip().startswith("เรื่อง")
    assert salutation_th(ctx.recipient) in thai
    assert "สำนักงาน ก.พ.ร." in thai and "ขอแสดงความนับถือ" in thai
    assert "Dear " in english and "Yours faithfully" in english and "OPDC" in english
    if kind != "alert":
        assert "30 เมษายน 2554" in thai
        assert "30 April 2011" in english
    html_thai, _, html_english = mail.html.partition('<div lang="en">')
    assert '<html lang="th">' in html_thai and html_english
    assert salutation_th(ctx.recipient) in html_thai
    assert "{{" not in mail.text + mail.html
    subject_th, _, subject_en = mail.subject.partition(" / ")
    assert subject_th.startswith("[คำรับรองฯ 2554] ") and subject_en


def test_subject_matches_the_brief_and_subject_for() -> None:
    expected = (
        "[คำรับรองฯ 2554] แจ้งเตือน: รายงานการประเมินผลตนเอง รอบ 6 เดือน ครบกำหนด"
        " 30 เมษายน 2554 (อีก 7 วัน) / Reminder: SAR 6 months due 30 April 2011 (7 days left)"
    )
    assert render_mail(context("reminder")).subject == expected
    for kind in KINDS:
        ctx = context(kind)
        assert render_mail(ctx).subject == subject_for(
            kind,
            cycle_id=ctx.cycle_id,
            milestone_id=ctx.milestone_id,
            milestone_title_th=ctx.milestone_title_th,
            milestone_title_en=ctx.milestone_title_en,
            due=ctx.due,
            offset_days=ctx.offset_days,
            digest_of=ctx.digest_of,
            previous_due=ctx.previous_due,
        )


def test_subjects_carry_the_thai_date_and_ignore_the_recipient() -> None:
    for kind in ("reminder", "overdue", "escalation", "receipt", "digest", "correction"):
        subjects = {
            render_mail(context(kind, recipient=who)).subject
            for who in (PROVINCE, Recipient("group", "ภาคเหนือตอนบน 1", None), OPDC)
        }
        assert len(subjects) == 1
        (subject,) = subjects
        assert "30 เมษายน 2554" in subject and "30 April 2011" in subject
    one_day = subject_for(
        "reminder",
        cycle_id="2554",
        milestone_id="sar12",
        milestone_title_th="รายงานรอบ 12 เดือน",
        milestone_title_en=None,
        due=dt.date(2011, 10, 31),
        offset_days=1,
    )
    assert "31 ตุลาคม 2554 (อีก 1 วัน)" in one_day
    assert one_day.endswith("Reminder: sar12 due 31 October 2011 (1 day left)")


def test_subject_for_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown mail kind"):
        subject_for(
            "memo",
            cycle_id="2554",
            milestone_id=None,
            milestone_title_th=None,
            milestone_title_en=None,
            due=None,
            offset_days=None,
        )
    with pytest.raises(ValueError, match="due"):
        subject_for(
            "reminder",
            cycle_id="2554",
            milestone_id="sar6",
            milestone_title_th="x",
            milestone_title_en=None,
            due=None,
            offset_days=7,
        )
    with pytest.raises(ValueError, match="digest_of"):
        subject_for(
            "digest",
            cycle_id="2554",
            milestone_id="sign",
            milestone_title_th="x",
            milestone_title_en=None,
            due=dt.date(2010, 11, 30),
            offset_days=1,
        )


def test_salutations_by_recipient_kind() -> None:
    cases = {
        Recipient("province", "เชียงใหม่", None): "เรียน ผู้ว่าราชการจังหวัดเชียงใหม่",
        Recipient("province", "จังหวัดเชียงใหม่", None): "เรียน ผู้ว่าราชการจังหวัดเชียงใหม่",
        Recipient("group", "ภาคเหนือตอนบน 1", None): (
            "เรียน ผู้ว่าราชการจังหวัดผู้รับผิดชอบกลุ่มจังหวัดภาคเหนือตอนบน 1"
        ),
        Recipient("group", "กลุ่มจังหวัดภาคเหนือตอนบน 1", None): (
            "เรียน ผู้ว่าราชการจังหวัดผู้รับผิดชอบกลุ่มจังหวัดภาคเหนือตอนบน 1"
        ),
        Recipient("agency", "กรมการปกครอง", None): "เรียน หัวหน้าส่วนราชการ กรมการปกครอง",
        Recipient("opdc", "สำนักงาน ก.พ.ร.", None): "เรียน เลขาธิการ ก.พ.ร.",
        Recipient("supervisor", "จังหวัดเชียงใหม่", None): "เรียน ผู้บังคับบัญชาของจังหวัดเชียงใหม่",
        Recipient(
            "supervisor", "เชียงใหม่", "Chiang Mai", "ปลัดกระทรวงมหาดไทย", "Permanent Secretary"
        ): "เรียน ปลัดกระทรวงมหาดไทย",
    }
    for recipient, expected in cases.items():
        assert salutation_th(recipient) == expected
        assert render_mail(context("reminder", recipient=recipient)).text.count(expected) == 1
    with pytest.raises(ValueError, match="recipient kind"):
        salutation_th(Recipient("mayor", "x", None))


def test_strict_undefined_catches_missing_values() -> None:
    with pytest.raises(jinja2.UndefinedError):
        environment().from_string("{{ missing }}").render()
    with pytest.raises(jinja2.UndefinedError, match="event_date_th"):
        render_mail(context("receipt", event_at=None))
    with pytest.raises(jinja2.UndefinedError, match="late_business_days"):
        render_mail(context("receipt", late_business_days=None))
    with pytest.raises(jinja2.UndefinedError, match="org_th"):
        render_mail(context("escalation", organisation_name_th=None))
    with pytest.raises(jinja2.UndefinedError, match="alert_reason"):
        render_mail(context("alert", alert_reason=None))


def test_html_is_escaped_text_is_not() -> None:
    mail = render_mail(context("reminder", organisation_name_th='จังหวัด<script>"x"&'))
    assert "<script>" not in mail.html
    assert "จังหวัด&lt;script&gt;&#34;x&#34;&amp;" in mail.html
    assert 'จังหวัด<script>"x"&' in mail.text
    alert = render_mail(context("alert", alert_reason="550 <bad@example.org> refused"))
    assert "&lt;bad@example.org&gt;" in alert.html and "<bad@example.org>" in alert.text


def test_receipt_on_time_and_late() -> None:
    late = render_mail(context("receipt", late_business_days=3))
    assert "3 พฤษภาคม 2554 เวลา 10.15 น." in late.text
    assert "ล่าช้ากว่ากำหนด (วันเสาร์ที่ 30 เมษายน 2554) จำนวน 3 วันทำการ" in late.text
    assert "3 business days late" in late.text and "3 May 2011 at 10:15" in late.text
    on_time = render_mail(
        context(
            "receipt", late_business_days=0, event_at=dt.datetime(2011, 4, 29, 3, 0, tzinfo=dt.UTC)
        )
    )
    assert "29 เมษายน 2554 เวลา 10.00 น." in on_time.text
    assert "ภายในกำหนด" in on_time.text and "on time" in on_time.text
    no_due = render_mail(context("receipt", due=None, milestone_id="publish", late_business_days=0))
    assert "ภายในกำหนด" not in no_due.text and "(due" not in no_due.text  # nothing to be late for
    assert "on time" not in no_due.text and "10.15 น." in no_due.text


def test_escalation_and_digest_and_alert_content() -> None:
    escalation = render_mail(context("escalation", offset_days=7))
    assert "ยังไม่ได้รับผลการดำเนินการ" in escalation.text
    assert "พ้นกำหนดมาแล้ว 7 วัน" in escalation.text
    assert "That deadline passed 7 days ago" in escalation.text
    digest = render_mail(context("digest"))
    assert "1. จังหวัดเชียงใหม่" in digest.text and "2. จังหวัดเชียงราย" in digest.text
    assert "<li>จังหวัดเชียงราย</li>" in digest.html and "TH-57" not in digest.text
    assert "จำนวน 2 รายการ" in digest.text and "outstanding for 2 agreements" in digest.text
    reminder_digest = render_mail(context("digest", digest_of="reminder", pending=()))
    assert "(ไม่มี)" in reminder_digest.text and "(7 days left)" in reminder_digest.subject
    alert = render_mail(context("alert"))
    assert "2554/TH-50/sar6/2011-04-30/reminder/7" in alert.text
    assert "550 5.1.1 no such user" in alert.text and "failed" in alert.text
