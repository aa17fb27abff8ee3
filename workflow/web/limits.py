"""The request body limit, decided before anything else (authentication included).

A ``Content-Length`` over the limit is refused without reading a byte of the body. Otherwise
the body is read here first, counting the bytes as they stream in (chunked uploads have no
length), and refused as soon as the count passes the limit; a body within the limit is then
handed to the application unchanged. The limit is ``MAX_BODY``, except for a document
uploaded with an event (``_limit_for``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from workflow.rules.errors import BadInput
from workflow.store.documents import max_document_bytes
from workflow.web.content import media_type
from workflow.web.problems import PROBLEM_TYPE, problem_body

MAX_BODY = 1_048_576

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: 413 for any HTTP request body over ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then buffer and count the body before the app runs."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == -1:
            await _refuse(send, 400, "Content-Length is not a number")
            return
        limit = _limit_for(scope, self.limit)
        if declared is not None and declared > limit:
            await _refuse(send, 413, _detail(f"declares {declared} bytes", limit))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _refuse(send, 413, _detail(f"sent more than {limit} bytes", limit))
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _detail(what: str, limit: int) -> str:
    return f"the request body {what}; the limit is {limit} bytes"


# A document uploaded with an event (multipart/form-data on the events endpoint only) may be
# up to the document size limit (workflow.store.documents, 20 MiB by default); the body may then
# hold
# that plus the event's JSON (at most MAX_BODY) and the multipart framing. The document's own
# limit is checked again, exactly, where the form is read (413 there too).
_EVENTS_PATH = re.compile(
    r"^(/api/v1/agreements/[^/]+/events|/agreements/[^/]+/esar/(sar6|esar9|sar12))/?$"
)  # the second: the e-SAR Card form (workflow.web.forms.esar)


def _limit_for(scope: Scope, limit: int) -> int:
    """``limit``, or for a multipart POST to the events endpoint the larger upload limit."""
    if scope.get("method") != "POST" or not _EVENTS_PATH.match(scope.get("path", "")):
        return limit
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-type":
            if media_type(value.decode("latin-1")) != "multipart/form-data":
                return limit
            try:
                return max_document_bytes() + limit + 64 * 1024
            except BadInput:  # a malformed setting: the form is then refused, saying why
                return limit
    return limit


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent, -1 when malformed."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


async def _refuse(send: Send, status: int, detail: str) -> None:
    payload = json.dumps(problem_body(status, detail)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
