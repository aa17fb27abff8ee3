"""Real SMTP servers in the test process (aiosmtpd) that keep what they receive.

``MailSink`` parses every message on arrival and waits for the n-th one to an address
(``wait_for``); ``text_of`` reads a letter's plain-text body. ``RecordingHandler`` keeps every
envelope as ``Received`` (and refuses listed recipients, or every DATA, when told to), served by
``smtp_server(handler)`` on a ``free_port()``. The services' own sinks, which record
Message-IDs, are in :mod:`tests.support.service` and :mod:`tests.support.multiprocess`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

from aiosmtpd.controller import Controller

from notifications.mailers import SmtpMailer


class MailSink:
    """aiosmtpd on a free loopback port; every message as parsed on arrival."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.messages: list[tuple[tuple[str, ...], EmailMessage]] = []
        self._cond = threading.Condition()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed: EmailMessage = message_from_bytes(envelope.content, policy=default_policy)
        with self._cond:
            self.messages.append((tuple(envelope.rcpt_tos), parsed))
            self._cond.notify_all()
        return "250 Message accepted"

    def mailer(self) -> SmtpMailer:
        """A mailer that delivers here."""
        return SmtpMailer("127.0.0.1", self.port, connections=1)

    def to(self, address: str) -> list[EmailMessage]:
        """Every message received for ``address``."""
        with self._cond:
            return [message for rcpt, message in self.messages if address in rcpt]

    def wait_for(self, address: str, count: int = 1, timeout: float = 60) -> EmailMessage:
        """The ``count``-th message for ``address`` (waits for it; fails after ``timeout``)."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [message for rcpt, message in self.messages if address in rcpt]
                if len(found) >= count:
                    return found[count - 1]
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no message #{count} for {address} within {timeout}s")
                self._cond.wait(min(left, 0.5))


def text_of(message: EmailMessage) -> str:
    """The plain-text body of a letter."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the letter has no text/plain part"
    return str(cast(EmailMessage, part).get_content())


@dataclass
class Received:
    """One envelope a ``RecordingHandler`` accepted (``login``: the AUTH login, if any)."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    peer: Any
    login: bytes | None


@dataclass
class RecordingHandler:
    """Accepts everything and keeps it; refuses listed recipients or every DATA if told to."""

    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply is not None:
            return self.data_reply
        login = session.auth_data.login if session.authenticated else None
        self.received.append(
            Received(
                envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.peer, login
            )
        )
        return "250 Message accepted"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def smtp_server(handler: RecordingHandler, **smtp_options: Any) -> Iterator[int]:
    """Serve ``handler`` with aiosmtpd on a free loopback port for a block; yield the port."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **smtp_options)
    controller.start()
    try:
        yield int(controller.port)
    finally:
        controller.stop()
