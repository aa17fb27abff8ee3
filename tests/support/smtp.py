"""A real SMTP server in the test process (aiosmtpd) that keeps what it receives, and the
sign-in steps the session tests share (the form's CSRF token, a mailed link)."""

from __future__ import annotations

import re
import socket
import threading
import time
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

import httpx
from aiosmtpd.controller import Controller

from notifications.mailers import SmtpMailer

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://\S+/signin/link/[A-Za-z0-9_%-]+")


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


def link_in(message: EmailMessage) -> str:
    """The one sign-in link a letter carries."""
    links = set(LINK.findall(text_of(message)))
    assert len(links) == 1, links
    return str(links.pop())


def csrf_of(client: httpx.Client) -> str:
    """Open the sign-in page with ``client`` and read its form's CSRF token."""
    page = client.get("/signin")
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None, "the sign-in form carries no CSRF token"
    return found.group(1)


def password_signin(client: httpx.Client, login: str, password: str) -> httpx.Response:
    """Sign in through the form (CSRF included); the answer, redirects not followed."""
    form = {"csrf_token": csrf_of(client), "login": login, "password": password}
    return client.post("/signin", data=form, follow_redirects=False)


def ask_link(client: httpx.Client, login: str) -> httpx.Response:
    """Ask for a sign-in link through the form."""
    form = {"csrf_token": csrf_of(client), "login": login}
    return client.post("/signin/link", data=form, follow_redirects=False)
