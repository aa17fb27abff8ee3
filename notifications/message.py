"""Turn a rendered letter into a MIME message ready for SMTP or a Maildir."""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
from dataclasses import dataclass
from email.message import EmailMessage

from notifications.render import RenderedMail


@dataclass(frozen=True)
class OutgoingMail:
    """One letter to send: the outbox key, envelope, headers and rendered bodies."""

    key: str
    sender: str
    to: str
    message_id: str
    date: dt.datetime
    rendered: RenderedMail
    ics: bytes | None = None


def build_message(mail: OutgoingMail) -> EmailMessage:
    """The MIME message: text + HTML alternatives (UTF-8), plus ``deadline.ics`` when given.

    ``Date`` is ``mail.date`` (the clock's time, possibly virtual) and ``Message-ID`` is exactly
    ``mail.message_id``; Thai headers are RFC 2047 encoded by the ``SMTP`` policy.
    """
    if mail.date.tzinfo is None:
        raise ValueError("OutgoingMail.date must be an aware datetime")
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = mail.sender
    message["To"] = mail.to
    message["Subject"] = mail.rendered.subject
    message["Date"] = email.utils.format_datetime(mail.date)
    message["Message-ID"] = mail.message_id
    message["X-Rubrong-Key"] = mail.key
    message["X-Rubrong-Template"] = f"{mail.rendered.template}@{mail.rendered.version}"
    message.set_content(mail.rendered.text, charset="utf-8")
    message.add_alternative(mail.rendered.html, subtype="html", charset="utf-8")
    if mail.ics is not None:
        message.add_attachment(
            mail.ics,
            maintype="text",
            subtype="calendar",
            filename="deadline.ics",
            params={"method": "PUBLISH", "charset": "utf-8"},
        )
    return message
