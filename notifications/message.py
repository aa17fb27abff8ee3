"""Turn a rendered letter into a MIME message ready for SMTP or a Maildir."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import functools
import hashlib
import io
import re
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy

from notifications.render import RenderedMail

_UNFOLDED = frozenset(
    {"message-id", "in-reply-to", "references", "x-rubrong-key", "x-rubrong-template"}
)
_ENCODED = frozenset({"subject"})
# RFC 2047: an encoded-word is at most 75 characters and a line holding one at most 76. 39 UTF-8
# bytes are 52 base64 characters, a 64-character word: "Subject: " + word fits on a line.
_WORD_BYTES = 39


@functools.lru_cache(maxsize=4096)
def encode_words(name: str, value: str, linesep: str) -> str:
    """``Name: value`` as RFC 2047 base64 encoded-words of whole characters, one per line.

    The stdlib folder (``_refold_parse_tree``) is slow on Thai text, and it drops a space that
    falls on the boundary between two encoded-words, so a client decoded a different subject
    (``30 เมษายน`` came back as ``30เมษายน``). Here every space is *inside* an encoded-word, and the
    folding whitespace between adjacent words is ignored by decoders (RFC 2047 section 6.2),
    so what a client decodes is exactly ``value``. Cached: a run sends few distinct subjects.
    """
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in value:
        width = len(char.encode("utf-8"))
        if size + width > _WORD_BYTES and chunk:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    words.append("".join(chunk))
    encoded = (
        "=?utf-8?b?" + base64.b64encode(word.encode("utf-8")).decode("ascii") + "?="
        for word in words
    )
    return f"{name}: " + f"{linesep} ".join(encoded) + linesep


class _MailPolicy(EmailPolicy):
    """The SMTP policy, except that identifier headers are never folded and non-ASCII
    subjects are encoded by :func:`encode_words`.

    Python folds a long ``Message-ID`` onto a continuation line and then parses it back with a
    leading space; identifiers must survive a round trip byte for byte.
    """

    def fold(self, name: str, value: str) -> str:
        lower = name.lower()
        if lower in _UNFOLDED:
            return f"{name}: {value}{self.linesep}"
        if lower in _ENCODED and not str(value).isascii():
            return encode_words(name, str(value), self.linesep)
        folded: str = super().fold(name, value)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        lower = name.lower()
        if lower in _UNFOLDED or (lower in _ENCODED and not str(value).isascii()):
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


POLICY = _MailPolicy(linesep="\r\n")
"""``email.policy.SMTP`` (CRLF, RFC 2047 headers) with identifier headers kept on one line."""


_BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


def _addresses(value: str) -> list[tuple[str, str]]:
    if _BARE_ADDRESS.fullmatch(value):  # the usual case, and getaddresses is slow
        return [("", value)]
    pairs = email.utils.getaddresses([value])
    if not pairs or any(
        "@" not in addr or not addr.isascii() or any(c.isspace() for c in addr) for _, addr in pairs
    ):
        raise ValueError(f"not a mail address: {value!r}")
    return pairs


def envelope(mail: OutgoingMail) -> tuple[str, list[str]]:
    """The SMTP envelope: the sender's address and every recipient's, ``To`` then ``Cc``
    (``ValueError`` if bad)."""
    recipients = [addr for _, addr in _addresses(mail.to)]
    if mail.cc:
        recipients += [addr for _, addr in _addresses(mail.cc) if addr not in recipients]
    return _addresses(mail.sender)[0][1], recipients


def _address_header(name: str, value: str, linesep: str) -> str:
    """``From``/``To``: one address per line, non-ASCII display names as encoded-words."""
    items = []
    for display, addr in _addresses(value):
        if display.isascii():
            items.append(email.utils.formataddr((display, addr)))
        else:
            # One encoded-word, even past RFC 2047's 75 characters: Python's address parser
            # keeps the space between two encoded-words of a name (the stdlib folder's own
            # output came back as "จังหวั ด"), where other clients drop it; decoders accept
            # long words. Only configured senders carry a display name here.
            encoded = base64.b64encode(display.encode("utf-8")).decode("ascii")
            items.append(f"=?utf-8?b?{encoded}?={linesep} <{addr}>")
    return f"{name}: " + f",{linesep} ".join(items) + linesep


def _plain_header(name: str, value: str, linesep: str) -> str:
    """An ASCII header, folded at spaces so that lines stay within 78 characters if they can."""
    if not value.isascii():
        return encode_words(name, value, linesep)
    lines, line = [], f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > 78 and line.strip() != f"{name}:":
            lines.append(line)
            line = ""
        line += f" {word}"
    lines.append(line)
    return linesep.join(lines) + linesep


@dataclass(frozen=True)
class OutgoingMail:
    """One letter to send: the outbox key, envelope, headers and rendered bodies.

    ``cc`` copies the letter (escalations: to the organisation's head); ``thread`` is the
    Message-ID-shaped root of the deadline's letters (``notifications.keys.thread_id``),
    sent as ``In-Reply-To`` and ``References``; ``ics`` a ``PUBLISH`` or ``CANCEL`` calendar.
    """

    key: str
    sender: str
    to: str
    message_id: str
    date: dt.datetime
    rendered: RenderedMail
    ics: bytes | None = None
    cc: str | None = None
    thread: str | None = None


def _base64(data: bytes, linesep: str) -> str:
    """Base64 in lines of 76 characters, each ended by ``linesep`` (as ``encodebytes``)."""
    text = binascii.b2a_base64(data, newline=False).decode("ascii")
    return "".join(f"{text[i : i + 76]}{linesep}" for i in range(0, len(text), 76))


@functools.lru_cache(maxsize=64)
def _date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment)  # slow on zoneinfo times; a batch shares one


def _text_part(subtype: str, text: str, linesep: str) -> str:
    """A UTF-8 text part in canonical form (CRLF line ends), base64."""
    body = "\r\n".join(text.splitlines()) + "\r\n"
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{linesep}'
        f"Content-Transfer-Encoding: base64{linesep}{linesep}"
        + _base64(body.encode("utf-8"), linesep)
    )


def _multipart(subtype: str, boundary: str, parts: list[str], linesep: str) -> str:
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"{linesep}'
    inner = "".join(f"{linesep}--{boundary}{linesep}{part}" for part in parts)
    return f"{head}{inner}{linesep}--{boundary}--{linesep}"


def mail_bytes(mail: OutgoingMail, *, linesep: str = "\r\n") -> bytes:
    """The MIME message as bytes: text + HTML alternatives (UTF-8), plus ``deadline.ics``.

    Written directly rather than through ``EmailMessage``, whose header machinery cost a few
    milliseconds per letter (``bench/mail.py``); the structure is the one ``EmailMessage``
    produced, and :func:`build_message` parses these very bytes. Every part is base64, so the
    message is 7-bit ASCII and needs no 8BITMIME. ``Date`` is ``mail.date`` (the clock's time,
    possibly virtual) and ``Message-ID`` is exactly ``mail.message_id``. Boundaries derive from
    the Message-ID (``_`` never occurs in base64), so the same letter gives the same bytes.

    Raises ``ValueError`` for a naive date, a bad address or a line break in a header value.
    """
    if mail.date.tzinfo is None:
        raise ValueError("OutgoingMail.date must be an aware datetime")
    template = f"{mail.rendered.template}@{mail.rendered.version}"
    values = [mail.sender, mail.to, mail.cc or "", mail.rendered.subject, mail.message_id]
    values += [mail.thread or "", mail.key, template]
    if any("\r" in value or "\n" in value for value in values):
        raise ValueError("header values may not contain line breaks")
    tag = hashlib.sha256(mail.message_id.encode("utf-8")).hexdigest()[:16]
    alternative = _multipart(
        "alternative",
        f"=_rb_{tag}_a",
        [
            _text_part("plain", mail.rendered.text, linesep),
            _text_part("html", mail.rendered.html, linesep),
        ],
        linesep,
    )
    body = alternative
    if mail.ics is not None:
        attachment = (
            f'Content-Type: text/calendar; method="{_ics_method(mail.ics)}"; charset="utf-8"'
            f"{linesep}"
            f"Content-Transfer-Encoding: base64{linesep}"
            f'Content-Disposition: attachment; filename="deadline.ics"{linesep}{linesep}'
            + _base64(mail.ics, linesep)
        )
        body = _multipart("mixed", f"=_rb_{tag}_m", [alternative, attachment], linesep)
    head = (
        _address_header("From", mail.sender, linesep)
        + _address_header("To", mail.to, linesep)
        + (_address_header("Cc", mail.cc, linesep) if mail.cc else "")
        + _plain_header("Subject", mail.rendered.subject, linesep)
        + f"Date: {_date(mail.date)}{linesep}"
        + f"Message-ID: {mail.message_id}{linesep}"
        + (
            f"In-Reply-To: {mail.thread}{linesep}References: {mail.thread}{linesep}"
            if mail.thread and mail.thread != mail.message_id
            else ""
        )
        + f"Auto-Submitted: auto-generated{linesep}"
        + f"X-Rubrong-Key: {mail.key}{linesep}"
        + f"X-Rubrong-Template: {template}{linesep}"
        + f"MIME-Version: 1.0{linesep}"
    )
    return (head + body).encode("ascii")


def _ics_method(data: bytes) -> str:
    """The iTIP method of a calendar file (its ``METHOD`` line), ``PUBLISH`` when absent."""
    match = re.search(rb"^METHOD:([A-Z-]+)\r?$", data, re.MULTILINE)
    return match.group(1).decode("ascii") if match else "PUBLISH"


def build_message(mail: OutgoingMail) -> EmailMessage:
    """:func:`mail_bytes` as an ``EmailMessage`` (what a client parses; tests, evidence)."""
    message = BytesParser(policy=POLICY).parsebytes(mail_bytes(mail))
    assert isinstance(message, EmailMessage)
    return message


def message_bytes(message: EmailMessage, *, linesep: str = "\r\n") -> bytes:
    """Flatten a message with :data:`POLICY` (use this, not ``aiosmtplib.send_message``).

    ``linesep="\n"`` gives the local form a Maildir file conventionally holds.
    """
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=POLICY.clone(linesep=linesep)).flatten(message)
    return buffer.getvalue()
