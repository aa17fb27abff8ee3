"""Mailers: deliver a batch of :class:`OutgoingMail` over SMTP, into a Maildir, or to a list.

A mailer never raises for a delivery problem: it answers one :class:`SendResult` per mail, in
order. ``TEMPORARY`` means "try again later" (server down, timeout, 4xx); ``PERMANENT`` means
the server refused this message for good (5xx).
"""

from __future__ import annotations

import asyncio
import enum
import mailbox
import os
import ssl
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from notifications.message import OutgoingMail, build_message, envelope, mail_bytes

SmtpMode = Literal["plain", "starttls", "tls"]
INSECURE_ENV = "RUBRONG_SMTP_INSECURE"
_SCHEMES: dict[str, tuple[SmtpMode, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


class SendStatus(enum.Enum):
    """The outcome of one delivery attempt."""

    SENT = "sent"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class SendResult:
    """The outcome for one mail of a batch (``error`` is set unless ``SENT``)."""

    key: str
    status: SendStatus
    error: str | None = None
    # ``SENT`` only: the message exactly as handed over (proof of notice; not compared).
    data: bytes | None = field(default=None, compare=False, repr=False)


class Mailer(Protocol):
    """Anything that can deliver a batch of mail."""

    async def send_batch(self, mails: Sequence[OutgoingMail]) -> list[SendResult]:
        """Deliver ``mails``; one result per mail, same order; never raises for delivery."""
        ...


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _classify(exc: Exception) -> SendStatus:
    """PERMANENT for a 5xx refusal of the message, TEMPORARY for anything else."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        return SendStatus.PERMANENT if codes and min(codes) >= 500 else SendStatus.TEMPORARY
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500:
        return SendStatus.PERMANENT
    return SendStatus.TEMPORARY


def _envelope(mail: OutgoingMail) -> tuple[str, list[str]]:
    return envelope(mail)


class SmtpMailer:
    """Deliver over SMTP with up to ``connections`` parallel, reused connections.

    Errors while connecting (refused, timeout, TLS, authentication) make the affected mail
    ``TEMPORARY``: they say nothing about the message itself. The server's 5xx answer to a
    message makes it ``PERMANENT``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        mode: SmtpMode = "plain",
        username: str | None = None,
        password: str | None = None,
        connections: int = 4,
        timeout: float = 10,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if mode not in ("plain", "starttls", "tls"):
            raise ValueError(f"SMTP mode must be plain, starttls or tls, not {mode!r}")
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self.host = host
        self.port = port
        self.mode: SmtpMode = mode
        self.username = username
        self.password = password
        self.connections = connections
        self.timeout = timeout
        self.tls_context = tls_context

    def _client(self) -> aiosmtplib.SMTP:
        insecure = os.environ.get(INSECURE_ENV, "") == "1"
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.mode == "tls",
            start_tls=self.mode == "starttls",
            validate_certs=not insecure,
            tls_context=self.tls_context,
            username=self.username,
            password=self.password,
            timeout=self.timeout,
        )

    async def send_batch(self, mails: Sequence[OutgoingMail]) -> list[SendResult]:
        """Deliver ``mails`` over parallel connections; one result per mail, same order."""
        results: list[SendResult | None] = [None] * len(mails)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(mails)):
            queue.put_nowait(index)
        connect_errors: list[str] = []
        workers = [
            asyncio.create_task(self._worker(mails, queue, results, connect_errors))
            for _ in range(min(self.connections, len(mails)))
        ]
        await asyncio.gather(*workers)
        reason = connect_errors[-1] if connect_errors else "not attempted"
        return [
            result or SendResult(mails[index].key, SendStatus.TEMPORARY, reason)
            for index, result in enumerate(results)
        ]

    async def _worker(
        self,
        mails: Sequence[OutgoingMail],
        queue: asyncio.Queue[int],
        results: list[SendResult | None],
        connect_errors: list[str],
    ) -> None:
        """Pull mails from the queue over one connection; stop if connecting fails."""
        client: aiosmtplib.SMTP | None = None
        try:
            while not queue.empty():
                index = queue.get_nowait()
                mail = mails[index]
                if client is None or not client.is_connected:
                    client = self._client()
                    try:
                        await client.connect()
                    except Exception as exc:
                        where = f"{self.host}:{self.port}"
                        error = f"SMTP session with {where} failed: {_describe(exc)}"
                        connect_errors.append(error)
                        results[index] = SendResult(mail.key, SendStatus.TEMPORARY, error)
                        return
                results[index] = await self._send_one(client, mail)
        finally:
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except Exception:
                    client.close()

    async def _send_one(self, client: aiosmtplib.SMTP, mail: OutgoingMail) -> SendResult:
        try:
            sender, recipients = _envelope(mail)
            data = mail_bytes(mail)
        except ValueError as exc:
            return SendResult(mail.key, SendStatus.PERMANENT, f"bad message: {exc}")
        try:
            await client.sendmail(sender, recipients, data)
        except Exception as exc:
            answered = (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused)
            if not isinstance(exc, answered):
                client.close()  # the connection is in an unknown state: reconnect next time
            return SendResult(mail.key, _classify(exc), _describe(exc))
        return SendResult(mail.key, SendStatus.SENT, data=data)


class MaildirMailer:
    """Write each message into a Maildir (created if missing); a write error is TEMPORARY.

    The file holds the very bytes an SMTP server would be handed (CRLF line ends), so that
    what the outbox records as sent is what the Maildir holds.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def _write(self, mails: Sequence[OutgoingMail]) -> list[SendResult]:
        results: list[SendResult] = []
        try:
            box = mailbox.Maildir(self.path, create=True)
        except OSError as exc:
            return [SendResult(m.key, SendStatus.TEMPORARY, _describe(exc)) for m in mails]
        for mail in mails:
            try:
                data = mail_bytes(mail)
            except ValueError as exc:
                results.append(SendResult(mail.key, SendStatus.PERMANENT, f"bad message: {exc}"))
                continue
            try:
                box.add(data)
            except OSError as exc:
                results.append(SendResult(mail.key, SendStatus.TEMPORARY, _describe(exc)))
            else:
                results.append(SendResult(mail.key, SendStatus.SENT, data=data))
        return results

    async def send_batch(self, mails: Sequence[OutgoingMail]) -> list[SendResult]:
        """Write ``mails`` into the Maildir (in a worker thread); one result per mail."""
        return await asyncio.to_thread(self._write, mails)


@dataclass
class RecordingMailer:
    """Keeps what it is given (unit tests only); can be told to fail.

    With ``fail_with`` set, mails whose key is in ``fail_keys`` (every mail when ``fail_keys``
    is None) get that status and ``error`` instead of being recorded.
    """

    fail_with: SendStatus | None = None
    fail_keys: Collection[str] | None = None
    error: str = "451 simulated failure"
    sent: list[OutgoingMail] = field(default_factory=list)
    messages: list[EmailMessage] = field(default_factory=list)
    batches: int = 0

    async def send_batch(self, mails: Sequence[OutgoingMail]) -> list[SendResult]:
        """Record ``mails`` (or fail them as configured); one result per mail."""
        self.batches += 1
        results: list[SendResult] = []
        for mail in mails:
            status = self.fail_with
            chosen = self.fail_keys is None or mail.key in self.fail_keys
            if status is not None and status is not SendStatus.SENT and chosen:
                results.append(SendResult(mail.key, status, self.error))
                continue
            data = mail_bytes(mail)
            self.messages.append(build_message(mail))
            self.sent.append(mail)
            results.append(SendResult(mail.key, SendStatus.SENT, data=data))
        return results


def mailer_from_url(url: str | None, *, maildir: Path, connections: int = 4) -> Mailer:
    """The mailer for ``--smtp URL``: unset → :class:`MaildirMailer` on ``maildir``.

    ``smtp://host:port`` (plain), ``smtp+starttls://user:pass@host:port``,
    ``smtps://user:pass@host:port`` (implicit TLS); user and password are percent-decoded.
    Raises ``ValueError`` for a URL it cannot use.
    """
    if url is None or not url.strip():
        return MaildirMailer(maildir)
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        known = ", ".join(f"{name}://" for name in _SCHEMES)
        raise ValueError(f"unsupported SMTP URL scheme in {url!r}; use one of {known}")
    mode, default_port = _SCHEMES[scheme]
    if not parts.hostname:
        raise ValueError(f"SMTP URL {url!r} has no host (expected {scheme}://host:port)")
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ValueError(f"SMTP URL {url!r} has a bad port: {exc}") from exc
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"SMTP URL {url!r} must not have a path, query or fragment")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not username:
        raise ValueError(f"SMTP URL {url!r} has a password but no user name")
    return SmtpMailer(
        parts.hostname,
        port,
        mode=mode,
        username=username or None,
        password=password,
        connections=connections,
    )
