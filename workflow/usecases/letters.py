"""From an outbox row to a letter ready to send: facts, wording, headers and calendar file.

The engine enqueues a row with a small context (tick: ``{}`` or a digest's pending list;
receipts: the event's time and late days). Everything else a letter says is derived here at
sending time from the cycle's settings and the organisation's row: the deliverable and its
verb, whom to address (a supervisor by title, with the organisation's head in ``Cc``), the
business days left or the penalty accrued at the letter's date (on the ``receiver_scope``
calendar), how and where to submit, whom to ask, the reference number, the thread headers and
the deadline's one calendar event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

from notifications.ics import cached_deadline_ics, sequence_at
from notifications.keys import message_id, thread_id
from notifications.message import OutgoingMail
from notifications.render import (
    MailContext,
    Recipient,
    formal_name_th,
    render_mail,
    salutation_en,
    salutation_th,
)
from notifications.wording import (
    Office,
    deliverable_of,
    formal_name_en,
    office_for,
    supervisor_title,
)
from workflow.config.model import Milestone
from workflow.rules.timeutil import BANGKOK, bangkok_date, to_bangkok
from workflow.store.repository import StoredCycle

# Notices whose letter carries the deadline's calendar event (escalations go to a supervisor,
# whose calendar the deadline is not in); a correction moves the event to the new date.
CALENDAR_NOTICES = ("reminder", "overdue", "correction")
_PROVINCE = re.compile(r"TH-\d{2}")
_OPDC = Recipient("opdc", "สำนักงาน ก.พ.ร.", "OPDC")


def build_letter(
    cycle: StoredCycle,
    row: Mapping[str, Any],
    org: Any | None,
    now: int,
    sender: str | None = None,
) -> OutgoingMail:
    """The letter for one outbox row, dated ``now`` (epoch seconds; the clock's time of sending).

    ``org`` is the row's organisation (a row of ``organisations``: ``id``, ``kind``,
    ``name_th``, ``name_en``, ``email``), None for OPDC's digests and alerts.
    """
    settings = cycle.settings
    context = json.loads(row["context"]) if isinstance(row["context"], str) else row["context"]
    milestone = settings.milestone(row["milestone"]) if row["milestone"] else None
    kind, notice = str(row["kind"]), row.get("notice")
    office = office_for(settings)
    day = bangkok_date(now)
    recipient, cc, copy_th, copy_en = _addressing(cycle, str(row["recipient_kind"]), kind, org)
    facts = _facts(cycle, milestone, kind, notice, day)
    event_at = context.get("event_at")
    previous_due = context.get("previous_due")
    ctx = MailContext(
        kind=kind,
        cycle_id=cycle.id,
        cycle_name_th=settings.name_th,
        cycle_name_en=settings.name_en,
        recipient=recipient,
        organisation_id=org.id if org is not None else None,
        organisation_name_th=formal_name_th(org.kind, org.name_th) if org is not None else None,
        organisation_name_en=(
            formal_name_en(org.kind, org.id, org.name_en, org.name_th) if org is not None else None
        ),
        organisation_kind=org.kind if org is not None else None,
        milestone_id=milestone.id if milestone else None,
        milestone_title_th=milestone.title_th if milestone else None,
        milestone_title_en=milestone.title_en if milestone else None,
        deliverable=deliverable_of(milestone) if milestone else None,
        due=milestone.due if milestone else None,
        offset_days=_offset(str(row["key"])) if kind not in ("receipt", "correction") else None,
        event_at=to_bangkok(event_at) if event_at is not None else None,
        late_business_days=context.get("late_business_days"),
        pending=_pending(context.get("pending", [])),
        digest_of=context.get("digest_of"),
        alert_key=context.get("alert_key"),
        alert_reason=context.get("alert_reason"),
        key=str(row["key"]),
        letter_date=day,
        office=office,
        copy_to_th=copy_th,
        copy_to_en=copy_en,
        previous_due=dt.date.fromisoformat(previous_due) if previous_due else None,
        **facts,
    )
    ics = _calendar(cycle, row, milestone, kind, notice, office, now)
    if ics is not None:
        ctx = dataclasses.replace(ctx, ics="cancel" if kind == "receipt" else "publish")
    rendered = dataclasses.replace(render_mail(ctx), subject=row["subject"])
    return OutgoingMail(
        key=str(row["key"]),
        sender=sender or settings.opdc_email,
        to=str(row["recipient"]),
        message_id=str(row["message_id"]),
        date=dt.datetime.fromtimestamp(now, tz=BANGKOK),
        rendered=rendered,
        ics=ics,
        cc=cc,
        thread=_thread(cycle.id, row, milestone, context),
    )


def _addressing(
    cycle: StoredCycle, recipient_kind: str, kind: str, org: Any | None
) -> tuple[Recipient, str | None, str | None, str | None]:
    """The recipient, the ``Cc`` address, and the สำเนาเรียน / Copy line."""
    if recipient_kind == "opdc":
        return _OPDC, None, None, None
    if recipient_kind == "supervisor":
        if org is None:  # OPDC's own deliverable: the cycle's OPDC supervisor
            th, en = supervisor_title("opdc", (None, None))
            return Recipient("supervisor", "สำนักงาน ก.พ.ร.", "OPDC", th, en), None, None, None
        th, en = supervisor_title(org.kind, cycle.settings.letters.supervisor_title(org.id))
        recipient = Recipient("supervisor", org.name_th, org.name_en, th, en)
        if kind != "escalation":
            return recipient, None, None, None
        head = Recipient(org.kind, org.name_th, org.name_en)
        copy_th = salutation_th(head).removeprefix("เรียน ")
        copy_en = salutation_en(head).removeprefix("Dear ").removesuffix(",")
        return recipient, str(org.email), copy_th, copy_en
    if org is None:
        return _OPDC, None, None, None
    return Recipient(recipient_kind, org.name_th, org.name_en), None, None, None


def _facts(
    cycle: StoredCycle, milestone: Milestone | None, kind: str, notice: str | None, day: dt.date
) -> dict[str, Any]:
    """Business days left (reminders), the penalty rate and the late days at ``day``."""
    out: dict[str, Any] = {}
    if milestone is None or milestone.due is None:
        return out
    due, scope = milestone.due, cycle.settings.calendar.receiver_scope
    calendar = cycle.calendar
    of = notice if kind == "digest" else kind
    if of in ("reminder", "correction"):
        start = day - dt.timedelta(days=1)  # business days d with day <= d <= due
        out["business_days_left"] = calendar.late_business_days(start, due, scope)
    if milestone.penalty_per_business_day is not None:
        out["penalty_per_business_day"] = milestone.penalty_per_business_day
        if of in ("overdue", "escalation"):
            out["penalty_days"] = calendar.late_business_days(due, day, scope)
    return out


def _calendar(
    cycle: StoredCycle,
    row: Mapping[str, Any],
    milestone: Milestone | None,
    kind: str,
    notice: str | None,
    office: Office,
    now: int,
) -> bytes | None:
    """The deadline's calendar event: published by reminders and overdue notices (and OPDC's
    digests of them), cancelled by the receipt; one UID per (cycle, agreement, milestone)."""
    if milestone is None or milestone.due is None:
        return None
    cancel = kind == "receipt"
    if not cancel and (notice not in CALENDAR_NOTICES or kind == "escalation"):
        return None
    wording = deliverable_of(milestone)
    summary = f"{wording.what_th} / {wording.what_en[:1].upper()}{wording.what_en[1:]}"
    channel = f"{office.email}" if office.email else ""
    description = f"{row['subject']}\n\nสำนักงาน ก.พ.ร. / OPDC: {office.contact_name_th} {channel}"
    root = thread_id(cycle.id, row["agreement"], milestone.id)
    return cached_deadline_ics(
        uid=root.strip("<>"),
        summary=summary,
        description=description.strip(),
        due=milestone.due,
        stamp=dt.datetime.fromtimestamp(now, tz=BANGKOK),
        sequence=sequence_at(now, cancel=cancel),
        method="CANCEL" if cancel else "PUBLISH",
        organizer=cycle.settings.opdc_email,
    )


def _thread(
    cycle_id: str, row: Mapping[str, Any], milestone: Milestone | None, context: dict[str, Any]
) -> str | None:
    """The letter's thread root: the deadline's; an alert replies to the letter it is about."""
    if context.get("alert_key"):
        return message_id(str(context["alert_key"]))
    if milestone is None:
        return None
    return thread_id(cycle_id, row["agreement"], milestone.id)


def _pending(items: list[list[str | None]]) -> tuple[tuple[str, ...], ...]:
    """A digest's pending agreements as (id, formal Thai name, formal English name).

    Each item is ``[id, name_th, kind, name_en]``; rows enqueued before the kind and English
    name were recorded hold ``[id, name_th]`` (a province code then means a province).
    """
    out = []
    for item in items:
        ident, name = str(item[0]), str(item[1])
        guess = "province" if _PROVINCE.fullmatch(ident) else ""
        kind = str(item[2]) if len(item) > 2 and item[2] else guess
        name_en = str(item[3]) if len(item) > 3 and item[3] else None
        out.append((ident, formal_name_th(kind, name), formal_name_en(kind, ident, name_en, name)))
    return tuple(out)


def _offset(key: str) -> int | None:
    tail = key.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None
