"""The outbox: notification keys, Message-IDs, and the exactly-once enqueue statements.

A key is ``cycle/agreement/milestone/due/kind/offset`` (``-`` for a missing part); the
UNIQUE primary key on it makes every enqueue exactly-once, and the Message-ID is the key with
``/`` turned into ``.``, so a resend after a crash carries the same Message-ID.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from notifications.render import TEMPLATE_VERSION
from workflow.tables import OutboxRow

OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
MESSAGE_ID_DOMAIN = "rubrong.invalid"
NOTICE_KINDS = ("reminder", "overdue", "escalation")


def outbox_key(
    cycle: str,
    agreement: str | None,
    milestone: str | None,
    due: str | None,
    kind: str,
    offset: int,
) -> str:
    """The unique key of one notification."""
    parts = (cycle, agreement or "-", milestone or "-", due or "-", kind, str(offset))
    return "/".join(parts)


def message_id(key: str) -> str:
    """The Message-ID header (angle brackets included) derived from a key."""
    return f"<{key.replace('/', '.')}@{MESSAGE_ID_DOMAIN}>"


def thread_id(cycle: str, agreement: str | None, milestone: str | None) -> str:
    """The root of one deadline's letters (angle brackets included), by :func:`message_id`'s
    rule over ``cycle/agreement/milestone``: every letter about it names this root in
    ``References`` and ``In-Reply-To``, and its ``.ics`` event has this UID (no brackets).

    No due date: letters of a moved deadline stay in the thread and update the same event.
    Three parts never equal a key's six, so a root is never a letter's Message-ID.
    """
    return message_id("/".join((cycle, agreement or "-", milestone or "-")))


@dataclass(frozen=True)
class Notification:
    """One notification to enqueue."""

    key: str
    cycle: str
    agreement: str | None
    milestone: str | None
    kind: str
    notice: str | None
    recipient: str
    recipient_kind: str
    subject: str
    send_at: int
    status: str
    context: Mapping[str, Any]


_INSERT_ONE = text(
    """
    INSERT INTO outbox (key, cycle_id, agreement, milestone, kind, notice, recipient,
        recipient_kind, subject, send_at, status, attempts, next_attempt_at, message_id,
        template, template_version, context, created_at)
    VALUES (:key, :cycle, :agreement, :milestone, :kind, :notice, :recipient, :recipient_kind,
        :subject, :send_at, :status, 0, :send_at, :message_id, :template, :version, :context,
        :now)
    ON CONFLICT (key) DO NOTHING
    """
)


def enqueue(conn: Connection, notification: Notification, now: int) -> bool:
    """Insert one notification unless its key exists; True when it was new."""
    result = conn.execute(
        _INSERT_ONE,
        {
            "key": notification.key,
            "cycle": notification.cycle,
            "agreement": notification.agreement,
            "milestone": notification.milestone,
            "kind": notification.kind,
            "notice": notification.notice,
            "recipient": notification.recipient,
            "recipient_kind": notification.recipient_kind,
            "subject": notification.subject,
            "send_at": notification.send_at,
            "status": notification.status,
            "message_id": message_id(notification.key),
            "template": f"mail/{notification.kind}",
            "version": TEMPLATE_VERSION,
            "context": json.dumps(notification.context, ensure_ascii=False, sort_keys=True),
            "now": now,
        },
    )
    return bool(result.rowcount)


def skip_pending(
    conn: Connection, cycle: str, milestone: str, notices: tuple[str, ...], agreement: str | None
) -> int:
    """Mark pending notices of a milestone ``skipped`` (one agreement, or all when None)."""
    marks = ", ".join(f":n{i}" for i in range(len(notices)))
    params: dict[str, Any] = {f"n{i}": notice for i, notice in enumerate(notices)}
    params.update(cycle=cycle, milestone=milestone, agreement=agreement)
    scope = "AND agreement = :agreement" if agreement is not None else ""
    result = conn.execute(
        text(
            f"UPDATE outbox SET status = 'skipped' WHERE cycle_id = :cycle "
            f"AND milestone = :milestone AND status = 'pending' AND notice IN ({marks}) {scope}"
        ),
        params,
    )
    return int(result.rowcount)
