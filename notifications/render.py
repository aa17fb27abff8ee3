"""Render notification mail (Thai first, English beneath) from Jinja2 templates.

Each kind of mail has ``templates/mail/<kind>.txt.j2`` and ``templates/mail/<kind>.html.j2``.
The template context holds only the values that are set: a template that needs a value the
caller left as ``None`` fails loudly (``StrictUndefined``) instead of printing an empty hole.
Subjects are computed in Python by :func:`subject_for`, independent of the recipient, so the
engine can compute one subject per milestone instant and reuse it for every organisation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from notifications.dates import BANGKOK, english_date, thai_date
from notifications.subjects import (
    KINDS,
    days_left_en,
    days_left_th,
    days_over_en,
    days_over_th,
    subject_for,
)
from notifications.wording import (
    Deliverable,
    Office,
    four_places,
    from_title,
    penalty_amount,
    reference_number,
    weekday_date_en,
    weekday_date_th,
)

TEMPLATE_VERSION = "2"
"""Bumped whenever a template's wording changes (recorded in ``X-Rubrong-Template``)."""

RECIPIENT_KINDS = ("province", "group", "agency", "opdc", "supervisor")
TEMPLATES_DIR = Path(__file__).parent / "bundled"
"""Mail templates are named from here (``mail/<kind>.txt.j2``): ``bundled/mail`` is a relative
link to the repository's ``templates/mail``, this package's data in a wheel (pyproject.toml)."""


@dataclass(frozen=True)
class Recipient:
    """Who a letter is addressed to (drives the salutation).

    A ``supervisor`` is addressed by title (``title_th``/``title_en``, e.g. ปลัดกระทรวงมหาดไทย);
    ``name_th``/``name_en`` then name the organisation the letter is about.
    """

    kind: str
    name_th: str
    name_en: str | None
    title_th: str | None = None
    title_en: str | None = None


@dataclass(frozen=True)
class MailContext:
    """Everything a mail template may show."""

    kind: str
    cycle_id: str
    cycle_name_th: str
    recipient: Recipient
    organisation_id: str | None
    organisation_name_th: str | None
    milestone_id: str | None
    milestone_title_th: str | None
    milestone_title_en: str | None
    due: dt.date | None
    offset_days: int | None
    event_at: dt.datetime | None
    late_business_days: int | None
    pending: tuple[tuple[str, ...], ...] = ()  # (id, Thai name[, kind]) per pending agreement
    digest_of: str | None = None
    alert_key: str | None = None
    alert_reason: str | None = None
    # The letter as a civil servant acts on it (workflow/usecases/letters.py fills these in).
    key: str | None = None  # the outbox key: gives the reference number
    letter_date: dt.date | None = None  # the date of sending (Bangkok)
    cycle_name_en: str | None = None
    organisation_kind: str | None = None
    organisation_name_en: str | None = None  # formal: "Chiang Mai Province"
    deliverable: Deliverable | None = None  # None: derived from the milestone title
    office: Office = field(default_factory=Office)
    business_days_left: int | None = None  # reminders: business days from letter date to due
    penalty_per_business_day: Decimal | None = None
    penalty_days: int | None = None  # late business days at the letter's date (overdue …)
    copy_to_th: str | None = None  # สำเนาเรียน … (escalations: the organisation's head)
    copy_to_en: str | None = None
    ics: str | None = None  # "publish" or "cancel" when a calendar file is attached
    previous_due: dt.date | None = None  # corrections: the deadline before it moved


@dataclass(frozen=True)
class RenderedMail:
    """A rendered letter: subject, plain text and HTML bodies, and the template used."""

    template: str
    version: str
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The shared Jinja2 environment (strict, HTML autoescaped, text whitespace-trimmed)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["first_upper"] = _first_upper  # "the Upper North 1 …" opening a sentence
    env.filters["spaced"] = _spaced  # "กลุ่มจังหวัดภาคเหนือตอนบน 1 มีกำหนด…"
    return env


def _first_upper(value: str) -> str:
    return value[:1].upper() + value[1:]


def _spaced(value: str) -> str:
    """Thai runs words together, but not after a digit, a Latin letter or a bracket."""
    return f"{value} " if value[-1:].isascii() and value[-1:] not in ("", " ") else value


def formal_name_th(kind: str, name: str) -> str:
    """How a letter names an organisation in running text: จังหวัดเชียงใหม่, กลุ่มจังหวัด…."""
    name = name.strip()
    if kind == "province":
        return f"จังหวัด{name.removeprefix('จังหวัด')}"
    if kind == "group":
        return f"กลุ่มจังหวัด{name.removeprefix('กลุ่มจังหวัด')}"
    return name


def salutation_th(recipient: Recipient) -> str:
    """The formal Thai salutation line (``เรียน …``) for a recipient."""
    name = recipient.name_th.strip()
    if recipient.kind == "province":
        return f"เรียน ผู้ว่าราชการจังหวัด{name.removeprefix('จังหวัด')}"
    if recipient.kind == "group":
        return f"เรียน ผู้ว่าราชการจังหวัดผู้รับผิดชอบกลุ่มจังหวัด{name.removeprefix('กลุ่มจังหวัด')}"
    if recipient.kind == "agency":
        return f"เรียน หัวหน้าส่วนราชการ {name}"
    if recipient.kind == "opdc":
        return "เรียน เลขาธิการ ก.พ.ร."
    if recipient.kind == "supervisor":
        return f"เรียน {recipient.title_th}" if recipient.title_th else f"เรียน ผู้บังคับบัญชาของ{name}"
    raise ValueError(f"unknown recipient kind {recipient.kind!r}")


def salutation_en(recipient: Recipient) -> str:
    """The English salutation line (``Dear …,``) for a recipient."""
    name = (recipient.name_en or "").strip()
    if recipient.kind == "province":
        name = name.removesuffix(" Province")
        return f"Dear Governor of {name} Province," if name else "Dear Provincial Governor,"
    if recipient.kind == "group":
        name = name.removeprefix("Provincial Group ").removesuffix(" Provincial Group")
        return (
            f"Dear Governor in charge of the {name} Provincial Group,"
            if name
            else "Dear Governor in charge of the Provincial Group,"
        )
    if recipient.kind == "agency":
        return f"Dear Head of {name}," if name else "Dear Head of Agency,"
    if recipient.kind == "opdc":
        return "Dear Secretary-General of the OPDC,"
    if recipient.kind == "supervisor":
        if recipient.title_en:
            return f"Dear {recipient.title_en},"
        return f"Dear Supervisor of {name}," if name else "Dear Supervisor,"
    raise ValueError(f"unknown recipient kind {recipient.kind!r}")


def _values(ctx: MailContext, subject: str) -> dict[str, Any]:
    """The template context: only the values that are set, plus derived strings."""
    raw: dict[str, Any] = {
        "kind": ctx.kind,
        "subject": subject,
        "cycle_id": ctx.cycle_id,
        "cycle_name_th": ctx.cycle_name_th,
        "salutation_th": salutation_th(ctx.recipient),
        "salutation_en": salutation_en(ctx.recipient),
        "recipient": ctx.recipient,
        "organisation_id": ctx.organisation_id,
        "organisation_name_th": ctx.organisation_name_th,
        "milestone_id": ctx.milestone_id,
        "title_th": ctx.milestone_title_th,
        "title_en": ctx.milestone_title_en or ctx.milestone_id,
        "offset_days": ctx.offset_days,
        "late_business_days": ctx.late_business_days,
        "pending": [(*item[:2], item[2] if len(item) > 2 else item[1]) for item in ctx.pending],
        "digest_of": ctx.digest_of,
        "alert_key": ctx.alert_key,
        "alert_reason": ctx.alert_reason,
    }
    topic_th, _, topic_en = subject.partition(" / ")
    raw["topic_th"] = topic_th.partition("] ")[2]
    raw["topic_en"] = topic_en
    if ctx.offset_days is not None:
        of = ctx.digest_of if ctx.kind == "digest" else ctx.kind
        if of == "reminder":
            raw["when_th"], raw["when_en"] = (
                days_left_th(ctx.offset_days),
                days_left_en(ctx.offset_days),
            )
        elif of in ("overdue", "escalation"):
            raw["when_th"], raw["when_en"] = (
                days_over_th(ctx.offset_days),
                days_over_en(ctx.offset_days),
            )
    if ctx.due is not None:
        raw["due_th"] = thai_date(ctx.due)
        raw["due_en"] = english_date(ctx.due)
    if ctx.event_at is not None:
        if ctx.event_at.tzinfo is None:
            raise ValueError("event_at must be an aware datetime")
        local = ctx.event_at.astimezone(BANGKOK)
        raw["event_date_th"] = thai_date(local.date())
        raw["event_date_en"] = english_date(local.date())
        raw["event_time_th"] = local.strftime("%H.%M")
        raw["event_time_en"] = local.strftime("%H:%M")
    raw.update(letter_values(ctx))
    return {key: value for key, value in raw.items() if value is not None}


def render_mail(ctx: MailContext) -> RenderedMail:
    """Render the subject, text and HTML of one letter.

    Raises ``jinja2.UndefinedError`` when a template needs a value the context left unset, and
    ``ValueError`` for an unknown kind or recipient kind.
    """
    if ctx.kind not in KINDS:
        raise ValueError(f"unknown mail kind {ctx.kind!r}; expected one of {', '.join(KINDS)}")
    subject = subject_for(
        ctx.kind,
        cycle_id=ctx.cycle_id,
        milestone_id=ctx.milestone_id,
        milestone_title_th=ctx.milestone_title_th,
        milestone_title_en=ctx.milestone_title_en,
        due=ctx.due,
        offset_days=ctx.offset_days,
        digest_of=ctx.digest_of,
        previous_due=ctx.previous_due,
    )
    values = _values(ctx, subject)
    env = environment()
    name = f"mail/{ctx.kind}"
    text = env.get_template(f"{name}.txt.j2").render(values)
    html = env.get_template(f"{name}.html.j2").render(values)
    return RenderedMail(
        template=name, version=TEMPLATE_VERSION, subject=subject, text=text, html=html
    )


def letter_values(ctx: MailContext) -> dict[str, Any]:
    """What a letter says beyond its subject: the deliverable and its verb, formal names, the
    reference, the letter's date, days left, the penalty, the channel and the contact."""
    out: dict[str, Any] = {"cycle_name_en": ctx.cycle_name_en or f"cycle {ctx.cycle_id}"}
    if ctx.key is not None:
        out["reference"] = reference_number(ctx.key)
    if ctx.alert_key is not None:
        out["failed_reference"] = reference_number(ctx.alert_key)
    if ctx.milestone_title_th is not None:
        thing = ctx.deliverable or from_title(ctx.milestone_title_th, ctx.milestone_title_en)
        out.update(
            deliverable_th=thing.th,
            deliverable_en=thing.en,
            verb_th=thing.verb_th,
            verb_en=thing.verb_en,
            what_th=thing.what_th,
            what_en=thing.what_en,
        )
    if ctx.organisation_name_th is not None:
        out["org_th"] = ctx.organisation_name_th
        out["org_en"] = ctx.organisation_name_en or ctx.organisation_name_th
    if ctx.letter_date is not None:
        out["letter_date_th"] = thai_date(ctx.letter_date)
        out["letter_date_en"] = english_date(ctx.letter_date)
        if ctx.due is not None:
            out["days_left"] = (ctx.due - ctx.letter_date).days
    if ctx.due is not None:
        out["due_day_th"] = weekday_date_th(ctx.due, thai_date(ctx.due))
        out["due_day_en"] = weekday_date_en(ctx.due, english_date(ctx.due))
    if ctx.previous_due is not None:
        out["previous_day_th"] = weekday_date_th(ctx.previous_due, thai_date(ctx.previous_due))
        out["previous_day_en"] = weekday_date_en(ctx.previous_due, english_date(ctx.previous_due))
    out["business_days_left"] = ctx.business_days_left
    rate = ctx.penalty_per_business_day
    if rate is not None:
        out["penalty_rate"] = four_places(rate)
        late = ctx.late_business_days if ctx.kind == "receipt" else ctx.penalty_days
        if late is not None:
            out["penalty_days"] = late
            out["penalty_amount"] = penalty_amount(late, rate)
    office = ctx.office
    out.update(
        contact_th=office.contact_name_th,
        contact_en=office.contact_name_en,
        contact_email=office.email,
        contact_phone=office.phone,
        address_th=office.address_th,
        address_en=office.address_en,
        portal_url=office.portal(ctx.organisation_id),
        public_url=office.public_url,
        copy_to_th=ctx.copy_to_th,
        copy_to_en=ctx.copy_to_en,
        ics=ctx.ics,
    )
    return out
