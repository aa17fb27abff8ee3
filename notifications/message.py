"""Turn a rendered letter into a MIME message ready for SMTP or a Maildir."""

from __future__ import annotations

import datetime as dt
import email.utils
import io
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy

from notifications.render import RenderedMail

_UNFOLDED = frozenset({"message-id", "x-rubrong-key", "x-rubrong-template"})


class _MailPolicy(EmailPolicy):
    """The SMTP policy, except that identifier headers are never folded.

    Python folds a long ``Message-ID`` onto a continuation line and then parses it back with a
    leading space; identifiers must survive a round trip byte for byte.
    """

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _UNFOLDED:
            return f"{name}: {value}{self.linesep}"
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _UNFOLDED:
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


POLICY = _MailPolicy(linesep="\r\n")
"""``email.policy.SMTP`` (CRLF, RFC 2047 headers) with identifier headers kept on one line."""


def _addresses(value: str) -> tuple[Address, ...]:
    pairs = email.utils.getaddresses([value])
    if not pairs or any("@" not in addr for _, addr in pairs):
        raise ValueError(f"not a mail address: {value!r}")
    return tuple(Address(display_name=name, addr_spec=addr) for name, addr in pairs)


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

    Every part is base64, so the flattened message is 7-bit ASCII and needs no 8BITMIME.

    ``Date`` is ``mail.date`` (the clock's time, possibly virtual) and ``Message-ID`` is exactly
    ``mail.message_id``; Thai headers are RFC 2047 encoded by the SMTP-style policy.
    """
    if mail.date.tzinfo is None:
        raise ValueError("OutgoingMail.date must be an aware datetime")
    message = EmailMessage(policy=POLICY)
    message["From"] = _addresses(mail.sender)
    message["To"] = _addresses(mail.to)
    message["Subject"] = mail.rendered.subject
    message["Date"] = email.utils.format_datetime(mail.date)
    message["Message-ID"] = mail.message_id
    message["X-Rubrong-Key"] = mail.key
    message["X-Rubrong-Template"] = f"{mail.rendered.template}@{mail.rendered.version}"
    message.set_content(mail.rendered.text, charset="utf-8", cte="base64")
    message.add_alternative(mail.rendered.html, subtype="html", charset="utf-8", cte="base64")
    if mail.ics is not None:
        message.add_attachment(
            mail.ics,
            maintype="text",
            subtype="calendar",
            filename="deadline.ics",
            params={"method": "PUBLISH", "charset": "utf-8"},
        )
    return message


def message_bytes(message: EmailMessage, *, linesep: str = "\r\n") -> bytes:
    """Flatten a message with :data:`POLICY` (use this, not ``aiosmtplib.send_message``).

    ``linesep="\n"`` gives the local form a Maildir file conventionally holds.
    """
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=POLICY.clone(linesep=linesep)).flatten(message)
    return buffer.getvalue()
