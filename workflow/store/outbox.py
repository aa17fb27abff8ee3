"""The outbox's statements: the exactly-once enqueue and skipping pending notices.

The UNIQUE primary key on a notification's key (``notifications.keys.outbox_key``) makes every
enqueue exactly-once; the row's Message-ID derives from the key (``notifications.keys``), so a
resend after a crash carries the same Message-ID.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from notifications.keys import MESSAGE_ID_DOMAIN, message_id, outbox_key
from notifications.render import TEMPLATE_VERSION
from workflow.store.tables import OutboxRow

OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
NOTICE_KINDS = ("reminder", "overdue", "escalation", "correction")
"""Letters about a deadline still to meet: skipped when it arrives, moves or its organisation
leaves the cycle file (receipts, digests and alerts are not)."""

# One notification per organisation from one INSERT … SELECT (``o`` the organisations row):
# the key and the Message-ID by the rules of ``notifications.keys``, from ``per_org_key``.
KEY_SQL = ":head || o.id || :tail"
MESSAGE_ID_SQL = f"'<' || REPLACE({KEY_SQL}, '/', '.') || :domain"


def per_org_key(cycle: str, milestone: str, due: str, kind: str, offset: int) -> dict[str, str]:
    """The parameters ``KEY_SQL`` and ``MESSAGE_ID_SQL`` need: ``outbox_key`` with the
    organisation left open, and the Message-ID's domain."""
    head, tail = outbox_key(cycle, "@", milestone, due, kind, offset).split("@")
    return {"head": head, "tail": tail, "domain": f"@{MESSAGE_ID_DOMAIN}>"}


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
