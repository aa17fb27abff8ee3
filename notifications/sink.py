"""An embedded SMTP server (aiosmtpd) that writes every message it accepts into a Maildir.

``simulate`` and ``make demo`` deliver through real SMTP to this sink, so the demo exercises
the same SMTP mailer as production while needing no mail server.
"""

from __future__ import annotations

import mailbox
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller


class _MaildirHandler:
    def __init__(self, maildir: mailbox.Maildir) -> None:
        self.maildir = maildir
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.maildir.add(envelope.original_content or envelope.content)
        self.count += 1
        return "250 Message accepted for delivery"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MaildirSink:
    """``with MaildirSink(path) as sink: ... sink.url`` — an SMTP server for the block."""

    def __init__(self, path: Path) -> None:
        maildir = mailbox.Maildir(path, create=True)
        for sub in ("tmp", "new", "cur"):  # Maildir only creates these for a new root
            (path / sub).mkdir(parents=True, exist_ok=True)
        self.handler = _MaildirHandler(maildir)
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        """The SMTP URL of the running sink."""
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def received(self) -> int:
        """Messages accepted so far."""
        return self.handler.count

    def __enter__(self) -> MaildirSink:
        self.controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.controller.stop()
