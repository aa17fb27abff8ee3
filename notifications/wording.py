"""The words letters are written with: deliverables and their verbs, formal names, supervisors'
titles, the OPDC's contact and submission channel, reference numbers and penalties.

Pure functions over the cycle's settings; ``notifications.render`` puts them into sentences.
A milestone may give its deliverable as a noun phrase with the verb it takes
(``deliverable_th = "รายงาน…"``, ``verb_th = "จัดส่ง"``); without them the title is used as the
noun phrase after a neutral verb (``ดำเนินการเรื่อง…`` / ``complete the item "…"``), so a
title that starts with a verb (``ส่งรายงาน…``) never follows another verb.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Protocol

PUBLIC_URL_ENV = "RUBRONG_PUBLIC_URL"
"""The environment variable naming the public base URL of the web dashboard (wins over the
cycle file's ``public_url``)."""

NEUTRAL_VERB_TH = "ดำเนินการ"
NEUTRAL_VERB_EN = "complete"
DOCUMENT_VERB_TH = "จัดส่ง"
DOCUMENT_VERB_EN = "submit"
# Whom an escalation is addressed to when the file names no supervisor title (CYCLE_FILE.md):
# a governor (a province's or a group's) answers to the Permanent Secretary for Interior, who
# co-signs the agreements; an agency's head to the Permanent Secretary of its ministry; OPDC's
# staff to the Secretary-General of the OPDC.
DEFAULT_SUPERVISORS = {
    "province": ("ปลัดกระทรวงมหาดไทย", "Permanent Secretary for Interior"),
    "group": ("ปลัดกระทรวงมหาดไทย", "Permanent Secretary for Interior"),
    "agency": ("ปลัดกระทรวงต้นสังกัด", "Permanent Secretary of the parent ministry"),
    "opdc": ("เลขาธิการ ก.พ.ร.", "Secretary-General of the OPDC"),
}
DEFAULT_CONTACT_TH = "เจ้าหน้าที่ผู้รับผิดชอบ สำนักงาน ก.พ.ร."
DEFAULT_CONTACT_EN = "the officer in charge at the OPDC"
_WEEKDAYS_TH = ("จันทร์", "อังคาร", "พุธ", "พฤหัสบดี", "ศุกร์", "เสาร์", "อาทิตย์")
_NOTICE_CODES = {
    "reminder": "R",
    "overdue": "O",
    "escalation": "E",
    "receipt": "RC",
    "correction": "C",
}


class _Worded(Protocol):
    """What :func:`deliverable_of` reads of a milestone (``workflow.config.model.Milestone``)."""

    @property
    def id(self) -> str: ...
    @property
    def title_th(self) -> str: ...
    @property
    def title_en(self) -> str | None: ...
    @property
    def deliverable_th(self) -> str | None: ...
    @property
    def verb_th(self) -> str | None: ...
    @property
    def deliverable_en(self) -> str | None: ...
    @property
    def verb_en(self) -> str | None: ...


class _LetterKeys(Protocol):
    """What :func:`office_for` reads of the cycle's letter settings
    (``workflow.config.model.LetterSettings``)."""

    @property
    def public_url(self) -> str | None: ...
    @property
    def contact_name_th(self) -> str | None: ...
    @property
    def contact_name_en(self) -> str | None: ...
    @property
    def contact_phone(self) -> str | None: ...
    @property
    def contact_email(self) -> str | None: ...
    @property
    def address_th(self) -> str | None: ...
    @property
    def address_en(self) -> str | None: ...


class _Settings(Protocol):
    """What :func:`office_for` reads of a cycle (``workflow.config.model.Cycle``)."""

    @property
    def opdc_email(self) -> str: ...
    @property
    def letters(self) -> _LetterKeys: ...


@dataclass(frozen=True)
class Deliverable:
    """A deliverable as letters name it: a noun phrase and the verb it takes, in both languages.

    ``what_th``/``what_en`` are the verb phrase (``จัดส่งรายงาน…`` / ``submit the … report``).
    """

    th: str
    verb_th: str
    en: str
    verb_en: str

    @property
    def what_th(self) -> str:
        """Verb + noun phrase, Thai (no space: ``จัดส่งรายงาน…``)."""
        return f"{self.verb_th}{self.th}"

    @property
    def what_en(self) -> str:
        """Verb + noun phrase, English (``submit the … report``)."""
        return f"{self.verb_en} {self.en}"


def deliverable_of(milestone: _Worded) -> Deliverable:
    """The milestone's wording keys, or a phrase derived from its title with a neutral verb."""
    derived = from_title(milestone.title_th, milestone.title_en)
    th, verb_th = derived.th, derived.verb_th
    if milestone.deliverable_th:
        th, verb_th = milestone.deliverable_th, milestone.verb_th or DOCUMENT_VERB_TH
    en, verb_en = derived.en, derived.verb_en
    if milestone.deliverable_en:
        en, verb_en = milestone.deliverable_en, milestone.verb_en or DOCUMENT_VERB_EN
    return Deliverable(th, verb_th, en, verb_en)


def from_title(title_th: str, title_en: str | None) -> Deliverable:
    """A title as the noun phrase of a neutral verb: ``ดำเนินการเรื่อง…``, ``complete the item
    "…"`` (the title may itself start with a verb: ``ส่งรายงาน…``)."""
    th = f"เรื่อง{title_th.strip().removeprefix('เรื่อง')}"
    en = f"the item “{(title_en or title_th).strip()}”"
    return Deliverable(th, NEUTRAL_VERB_TH, en, NEUTRAL_VERB_EN)


def formal_name_en(kind: str, ident: str, name_en: str | None, name_th: str) -> str:
    """How letters name an organisation in English running text: ``Chiang Mai Province``,
    ``the Upper North 1 Provincial Group``; a province without ``name_en`` takes its ISO 3166-2
    name, anything else without one its Thai name."""
    name = (name_en or "").strip()
    if kind == "province":
        name = name.removesuffix(" Province") or _iso_name(ident) or name_th.strip()
        return f"{name} Province"
    if kind == "group":
        name = name.removeprefix("Provincial Group ").removesuffix(" Provincial Group")
        name = name.removeprefix("the ") or name_th.strip().removeprefix("กลุ่มจังหวัด")
        return f"the {name} Provincial Group"
    return name or name_th.strip()


@cache
def _iso_name(code: str) -> str | None:
    import pycountry  # only for a province without name_en: its tables take a while to load

    subdivision = pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]
    return None if subdivision is None else str(subdivision.name)


def supervisor_title(kind: str, given: tuple[str | None, str | None]) -> tuple[str, str]:
    """The (Thai, English) title an escalation is addressed to: the file's, else the default."""
    default_th, default_en = DEFAULT_SUPERVISORS.get(kind, DEFAULT_SUPERVISORS["agency"])
    return given[0] or default_th, given[1] or default_en


@dataclass(frozen=True)
class Office:
    """The OPDC as letters present it: where deliverables go and whom to ask."""

    contact_name_th: str = DEFAULT_CONTACT_TH
    contact_name_en: str = DEFAULT_CONTACT_EN
    email: str | None = None
    phone: str | None = None
    address_th: str | None = None
    address_en: str | None = None
    public_url: str | None = None

    def portal(self, agreement: str | None) -> str | None:
        """The agreement's page on the dashboard (its home page for OPDC), when public."""
        if self.public_url is None:
            return None
        return f"{self.public_url}/agreements/{agreement}" if agreement else f"{self.public_url}/"


def office_for(settings: _Settings, environ: Mapping[str, str] | None = None) -> Office:
    """The cycle's contact and channel; defaults from ``opdc_email``; ``RUBRONG_PUBLIC_URL``
    (non-empty) wins over the file's ``public_url``."""
    keys = settings.letters
    env = os.environ if environ is None else environ
    url = (env.get(PUBLIC_URL_ENV) or "").strip() or keys.public_url
    return Office(
        contact_name_th=keys.contact_name_th or DEFAULT_CONTACT_TH,
        contact_name_en=keys.contact_name_en or DEFAULT_CONTACT_EN,
        email=keys.contact_email or settings.opdc_email,
        phone=keys.contact_phone,
        address_th=keys.address_th,
        address_en=keys.address_en or keys.address_th,
        public_url=url.rstrip("/") if url else None,
    )


def reference_number(key: str) -> str:
    """A letter's reference number, derived from its outbox key: short, stable, printable.

    ``2554/TH-50/sar6/R14-Q3ZK``: cycle, agreement (``OPDC`` for OPDC's own mail), milestone,
    the notice (``R``eminder, ``O``verdue, ``E``scalation + days; ``RC`` receipt; ``D…`` a
    digest; ``…A`` an alert about that letter), then four characters of the key's SHA-256 so
    that letters of a moved deadline (whose keys differ in the due date) differ too.
    """
    check = base64.b32encode(hashlib.sha256(key.encode("utf-8")).digest()).decode("ascii")[:4]
    parts = key.split("/")
    alert = parts[-1] == "alert"
    if alert:
        parts = parts[:-1]
    if len(parts) != 6:
        return f"{key[:40]}-{check}" if key.isprintable() else check
    cycle, agreement, milestone, _due, kind, offset = parts
    digest = kind.startswith("digest-")
    code = _NOTICE_CODES.get(kind.removeprefix("digest-"), kind[:2].upper())
    if code != "RC":
        code += offset
    code = ("D" if digest else "") + code + ("A" if alert else "")
    who = "OPDC" if agreement == "-" else agreement
    return f"{cycle}/{who}/{milestone}/{code}-{check}"


def weekday_date_th(day: dt.date, thai_date: str) -> str:
    """``วันเสาร์ที่ 30 เมษายน 2554`` from a date and its Thai form."""
    return f"วัน{_WEEKDAYS_TH[day.weekday()]}ที่ {thai_date}"


def weekday_date_en(day: dt.date, english_date: str) -> str:
    """``Saturday, 30 April 2011`` from a date and its English form."""
    return f"{day.strftime('%A')}, {english_date}"


def penalty_amount(days: int, rate: Decimal) -> str:
    """``days × rate`` with 4 decimals, half-up (as ``score`` prints the penalty)."""
    return str((rate * days).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def four_places(rate: Decimal) -> str:
    """A rate as letters print it: ``0.0500``."""
    return str(rate.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
