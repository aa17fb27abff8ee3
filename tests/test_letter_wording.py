"""The optional cycle-file keys that shape letters, and the words letters are made of."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
from decimal import Decimal
from pathlib import Path

import icalendar
import pytest

from notifications.ics import deadline_ics, sequence_at
from notifications.keys import message_id, outbox_key, thread_id
from notifications.message import envelope, mail_bytes
from notifications.render import MailContext, Recipient, render_mail
from notifications.wording import (
    PUBLIC_URL_ENV,
    Deliverable,
    deliverable_of,
    formal_name_en,
    office_for,
    penalty_amount,
    reference_number,
    supervisor_title,
)
from tests.conftest import Cli
from tests.support.letters import outgoing
from tests.support.validate import BASE, problems, validate
from workflow.config.validate import parse_cycle
from workflow.rules.timeutil import BANGKOK

LETTER_KEYS = """\
public_url = "https://rubrong.example/"
contact_name_th = "กลุ่มงานประเมินผล"
contact_phone = "0 2356 9999"
contact_email = "desk@opdc.example"
address_th = "59/1 ถนนพิษณุโลก"
"""


def with_keys(cycle: str = "", milestone: str = "", organisation: str = "") -> str:
    """BASE with lines added to [cycle], the first milestone and the first organisation."""
    text = BASE.replace(
        'opdc_supervisor_email = "boss@opdc.example"\n',
        'opdc_supervisor_email = "boss@opdc.example"\n' + cycle,
        1,
    )
    text = text.replace('id = "propose_kpis"\n', 'id = "propose_kpis"\n' + milestone, 1)
    head = text.index("[[organisations]]")
    return text[:head] + text[head:].replace("\n\n", "\n" + organisation + "\n", 1)


def test_a_contract_shaped_file_gets_the_defaults() -> None:
    cycle = parse_cycle(BASE)
    office = office_for(cycle, {})
    assert (office.email, office.phone, office.public_url) == ("opdc@opdc.example", None, None)
    assert office.contact_name_th == "เจ้าหน้าที่ผู้รับผิดชอบ สำนักงาน ก.พ.ร."
    assert cycle.letters.supervisor_title("TH-50") == (None, None)
    assert supervisor_title("province", (None, None))[0] == "ปลัดกระทรวงมหาดไทย"
    sar6 = cycle.milestone("sar6")
    assert sar6 is not None and sar6.deliverable_th is None


def test_the_letter_keys_are_read() -> None:
    text = with_keys(
        LETTER_KEYS,
        'deliverable_th = "ข้อเสนอตัวชี้วัด"\nverb_th = "เสนอ"\ndeliverable_en = "the KPIs"\n',
        'supervisor_title_th = "ผู้ตรวจราชการกระทรวง"\n',
    )
    cycle = parse_cycle(text)
    office = office_for(cycle, {})
    assert office.public_url == "https://rubrong.example"  # the trailing slash is dropped
    assert office.portal("TH-50") == "https://rubrong.example/agreements/TH-50"
    assert (office.email, office.phone) == ("desk@opdc.example", "0 2356 9999")
    assert office.address_en == "59/1 ถนนพิษณุโลก"  # the Thai address when no English one
    env = office_for(cycle, {PUBLIC_URL_ENV: "https://opdc.example/rb/"})
    assert env.portal(None) == "https://opdc.example/rb/"
    first = cycle.organisations[0].id
    assert cycle.letters.supervisor_title(first) == ("ผู้ตรวจราชการกระทรวง", None)
    milestone = cycle.milestone("propose_kpis")
    assert milestone is not None
    words = deliverable_of(milestone)
    assert (words.what_th, words.what_en) == ("เสนอข้อเสนอตัวชี้วัด", "submit the KPIs")


def test_bad_letter_keys_are_reported_with_their_lines(sqlite_cli: Cli, tmp_path: Path) -> None:
    text = with_keys(
        'public_url = "ftp://x"\ncontact_email = "desk"\ncontact_phone = "call us"\n',
        'verb_th = "จัดส่ง"\ndeliverable_en = ""\n',
        "supervisor_title_en = 5\n",
    )
    result = validate(sqlite_cli, tmp_path, text)
    assert result.code == 2
    found = problems(result)
    lines = text.splitlines()
    for fragment in (
        "public_url",
        "contact_email",
        "contact_phone",
        "verb_th",
        "deliverable_en",
        "supervisor_title_en",
    ):
        (line,) = [n for n, message in found if fragment in message]
        assert lines[line - 1].startswith(fragment), (fragment, line)
    assert len(found) == 6


def test_a_title_becomes_a_noun_phrase_after_a_neutral_verb() -> None:
    milestone = parse_cycle(BASE).milestone("sar6")
    assert milestone is not None
    titled = dataclasses.replace(milestone, title_th="ส่งรายงาน 6 เดือน", title_en="Send SAR 6")
    words = deliverable_of(titled)
    assert words.what_th == "ดำเนินการเรื่องส่งรายงาน 6 เดือน"
    assert words.what_en == "complete the item “Send SAR 6”"


def test_formal_names_in_english() -> None:
    assert formal_name_en("province", "TH-50", "Chiang Mai", "เชียงใหม่") == "Chiang Mai Province"
    assert formal_name_en("province", "TH-50", None, "เชียงใหม่") == "Chiang Mai Province"
    group = formal_name_en("group", "north-upper-1", "Upper North 1", "ภาคเหนือตอนบน 1")
    assert group == "the Upper North 1 Provincial Group"
    assert formal_name_en("agency", "dopa", None, "กรมการปกครอง") == "กรมการปกครอง"


def test_reference_numbers_are_short_stable_and_distinct() -> None:
    key = outbox_key("2554", "TH-50", "sar6", "2011-04-30", "reminder", 14)
    ref = reference_number(key)
    assert ref.startswith("2554/TH-50/sar6/R14-") and len(ref) <= 40 and ref.isprintable()
    assert reference_number(key) == ref
    moved = outbox_key("2554", "TH-50", "sar6", "2011-05-02", "reminder", 14)
    assert reference_number(moved) != ref  # a moved deadline's letters differ
    digest = outbox_key("2554", None, "sign", "2010-11-30", "digest-overdue", 1)
    assert reference_number(digest).startswith("2554/OPDC/sign/DO1-")
    assert reference_number(f"{key}/alert").startswith("2554/TH-50/sar6/R14A-")
    receipt = outbox_key("2554", "TH-50", "publish", None, "receipt", 0)
    assert reference_number(receipt).startswith("2554/TH-50/publish/RC-")


def test_penalty_amounts() -> None:
    assert penalty_amount(3, Decimal("0.0500")) == "0.1500"
    assert penalty_amount(0, Decimal("0.0500")) == "0.0000"


def test_thread_root_and_calendar_uid() -> None:
    root = thread_id("2554", "TH-50", "sar6")
    assert root == "<2554.TH-50.sar6@rubrong.invalid>"
    key = outbox_key("2554", "TH-50", "sar6", "2011-04-30", "reminder", 14)
    assert root != message_id(key) and "2011-04-30" not in root
    stamp = dt.datetime(2011, 5, 3, 10, 0, tzinfo=BANGKOK)
    notice = sequence_at(int(stamp.timestamp()))
    cancel = sequence_at(int(stamp.timestamp()), cancel=True)
    assert notice < cancel < sequence_at(int(stamp.timestamp()) + 60)
    data = deadline_ics(
        uid=root.strip("<>"),
        summary="s",
        description="d",
        due=dt.date(2011, 4, 30),
        stamp=stamp,
        sequence=cancel,
        method="CANCEL",
    )
    calendar = icalendar.Calendar.from_ical(data)
    (event,) = calendar.walk("VEVENT")
    assert (str(calendar["METHOD"]), str(event["STATUS"]), int(event.decoded("SEQUENCE"))) == (
        "CANCEL",
        "CANCELLED",
        cancel,
    )
    assert not event.walk("VALARM")
    with pytest.raises(ValueError, match="method"):
        deadline_ics(
            uid="u",
            summary="s",
            description="d",
            due=dt.date(2011, 4, 30),
            stamp=stamp,
            method="REQUEST",
        )


def test_headers_carry_the_thread_the_copy_and_auto_submitted() -> None:
    mail = dataclasses.replace(
        outgoing(1), cc="governor@th-50.example", thread="<2554.TH-50.sar6@rubrong.invalid>"
    )
    raw = mail_bytes(mail)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["In-Reply-To"] == message["References"] == mail.thread
    assert message["Cc"].addresses[0].addr_spec == "governor@th-50.example"
    assert envelope(mail)[1] == ["saraban@chiangmai.go.th", "governor@th-50.example"]
    assert b"In-Reply-To" not in mail_bytes(dataclasses.replace(mail, thread=None))


def test_the_portal_link_and_the_penalty_in_a_letter() -> None:
    ctx = MailContext(
        kind="overdue",
        cycle_id="2554",
        cycle_name_th="คำรับรองการปฏิบัติราชการ ประจำปีงบประมาณ พ.ศ. 2554",
        recipient=Recipient("province", "เชียงใหม่", "Chiang Mai"),
        organisation_id="TH-50",
        organisation_name_th="จังหวัดเชียงใหม่",
        organisation_name_en="Chiang Mai Province",
        milestone_id="sar12",
        milestone_title_th="ส่งรายงาน 12 เดือน",
        milestone_title_en="SAR 12",
        deliverable=Deliverable("รายงาน 12 เดือน", "จัดส่ง", "the 12-month report", "submit"),
        due=dt.date(2011, 10, 31),
        offset_days=3,
        event_at=None,
        late_business_days=None,
        letter_date=dt.date(2011, 11, 3),
        penalty_per_business_day=Decimal("0.0500"),
        penalty_days=3,
        office=office_for(parse_cycle(BASE), {PUBLIC_URL_ENV: "https://rb.example"}),
    )
    mail = render_mail(ctx)
    assert "ระบบคำรับรองการปฏิบัติราชการออนไลน์ https://rb.example/agreements/TH-50" in mail.text
    assert '<a href="https://rb.example/agreements/TH-50">' in mail.html
    assert "จะล่าช้า 3 วันทำการ คิดเป็นคะแนนที่ถูกหัก 0.1500 คะแนน" in mail.text
    assert "Chiang Mai Province was to submit the 12-month report" in mail.text
