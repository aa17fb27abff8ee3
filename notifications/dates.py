"""Dates as letters print them: Thai (Buddhist era) and English, and the Bangkok time zone.

Month names come from tables, not from the process locale or an NLP package.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

BANGKOK = ZoneInfo("Asia/Bangkok")
"""Letters are dated and timed in Asia/Bangkok."""

THAI_MONTHS = (
    "มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน",
    "กรกฎาคม", "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม",
)  # fmt: skip
ENGLISH_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
BUDDHIST_ERA_OFFSET = 543


def thai_date(day: dt.date) -> str:
    """``30 เมษายน 2554``: day, Thai month name, Buddhist-era year."""
    return f"{day.day} {THAI_MONTHS[day.month - 1]} {day.year + BUDDHIST_ERA_OFFSET}"


def english_date(day: dt.date) -> str:
    """``30 April 2011``."""
    return f"{day.day} {ENGLISH_MONTHS[day.month - 1]} {day.year}"
