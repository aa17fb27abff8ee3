"""Notification keys, Message-IDs and thread roots: pure rules over strings.

A key is ``cycle/agreement/milestone/due/kind/offset`` (``-`` for a missing part); the outbox's
UNIQUE primary key on it makes every enqueue exactly-once (``workflow.store.outbox``), and the
Message-ID is the key with ``/`` turned into ``.``, so a resend after a crash carries the same
Message-ID.
"""

from __future__ import annotations

MESSAGE_ID_DOMAIN = "rubrong.invalid"


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
