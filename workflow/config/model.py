"""The parsed, validated cycle file as frozen records (what the rest of the engine reads)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

from workflow.rules.kpis import ScoringRules

KINDS = ("province", "group", "agency")
MILESTONE_KINDS = ("deliverable", "cutoff", "window")
ACTORS = ("organisation", "opdc", "committee", "nso")
DEADLINE_POLICIES = ("keep", "next_business_day")
# A notice dated on a receiver's non-business day stays (CONTRACT's default: due − N days) or
# moves to the previous or the next business day.
NOTICE_DAY_POLICIES = ("keep", "previous", "next")
CHANGE_CUTOFF_ID = "change_requests"


@dataclass(frozen=True)
class CalendarChange:
    """A day added to or removed from the holiday list, everywhere or only in ``scope``."""

    date: dt.date
    name: str
    scope: tuple[str, ...] = ()


@dataclass(frozen=True)
class CalendarConfig:
    """Which holidays count and how deadlines on non-business days are treated."""

    holidays: str = "TH"
    deadline_policy: str = "keep"
    receiver_scope: str = "TH-10"
    add: tuple[CalendarChange, ...] = ()
    remove: tuple[CalendarChange, ...] = ()


@dataclass(frozen=True)
class NotificationRules:
    """When reminders, overdue notices and escalations go, and how mail is retried."""

    send_time: str = "09:00"
    reminders: tuple[int, ...] = (14, 7, 1)
    overdue_after: int = 1
    escalate_after: int = 7
    catch_up_days: int = 3
    max_attempts: int = 8
    non_business_days: str = "keep"


@dataclass(frozen=True)
class Milestone:
    """One milestone of the calendar. ``due`` is the effective last day (after the policy)."""

    id: str
    kind: str
    actor: str
    title_th: str
    title_en: str | None
    due: dt.date | None
    published_due: dt.date | None
    start: dt.date | None
    event: str | None
    reminders: tuple[int, ...]
    penalty_per_business_day: Decimal | None
    applies_to: frozenset[str]
    # How letters name the deliverable and the verb it takes (optional; notifications/wording.py
    # derives a sentence from the title when they are absent).
    deliverable_th: str | None = None
    verb_th: str | None = None
    deliverable_en: str | None = None
    verb_en: str | None = None

    def applies(self, kind: str) -> bool:
        """Whether this milestone concerns organisations of ``kind``."""
        return kind in self.applies_to


@dataclass(frozen=True)
class Group:
    """A province group; it also makes an agreement of its own."""

    id: str
    name_th: str
    name_en: str | None
    email: str
    supervisor_email: str
    provinces: tuple[str, ...]


@dataclass(frozen=True)
class Organisation:
    """A party to an agreement: a province, an agency, or (``kind == "group"``) a group."""

    id: str
    kind: str
    name_th: str
    name_en: str | None
    email: str
    supervisor_email: str
    group: str | None


@dataclass(frozen=True)
class LetterSettings:
    """What letters say about the OPDC: where to submit, whom to ask; supervisors' titles.

    Every value is optional in the cycle file (``[cycle]`` and each party's
    ``supervisor_title_th``/``_en``); ``notifications.wording`` supplies the defaults.
    """

    public_url: str | None = None
    contact_name_th: str | None = None
    contact_name_en: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None
    address_th: str | None = None
    address_en: str | None = None
    # (party id, Thai title, English title) for the parties whose file entry names them.
    supervisor_titles: tuple[tuple[str, str | None, str | None], ...] = ()

    def supervisor_title(self, party: str) -> tuple[str | None, str | None]:
        """The (Thai, English) supervisor title the file gives ``party``, else (None, None)."""
        return self._titles.get(party, (None, None))

    @cached_property
    def _titles(self) -> dict[str, tuple[str | None, str | None]]:
        return {party: (th, en) for party, th, en in self.supervisor_titles}


@dataclass(frozen=True)
class Cycle:
    """A whole validated cycle file."""

    id: str
    name_th: str
    name_en: str | None
    starts: dt.date
    ends: dt.date
    opdc_email: str
    opdc_supervisor_email: str
    calendar: CalendarConfig
    notifications: NotificationRules
    scoring: ScoringRules
    milestones: tuple[Milestone, ...]
    groups: tuple[Group, ...]
    organisations: tuple[Organisation, ...]
    document: dict[str, Any]
    letters: LetterSettings = LetterSettings()

    def milestone(self, milestone_id: str) -> Milestone | None:
        """The milestone with this id, if any."""
        return next((m for m in self.milestones if m.id == milestone_id), None)

    def parties(self) -> list[Organisation]:
        """Every agreement's party: groups first, then organisations, in file order."""
        groups = [
            Organisation(g.id, "group", g.name_th, g.name_en, g.email, g.supervisor_email, None)
            for g in self.groups
        ]
        return groups + list(self.organisations)

    @property
    def penalised(self) -> Milestone | None:
        """The one milestone whose lateness costs points, if the file names one."""
        return next((m for m in self.milestones if m.penalty_per_business_day is not None), None)
