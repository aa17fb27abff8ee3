"""What kind of body an event request carries: the one place that decides (415 otherwise).

``POST /api/v1/agreements/{agreement}/events`` takes ``application/json`` (``{"event", "data"?,
"at"?}``) or ``multipart/form-data`` (the same fields with a document uploaded alongside). Any
other media type, or none at all, is refused with 415 ``application/problem+json`` before the
body is read. Media type names are case-insensitive and parameters (``; charset=utf-8``,
``; boundary=…``) are allowed.
"""

from __future__ import annotations

from typing import Literal

from fastapi import Request

from workflow.web.problems import Problem

BodyKind = Literal["json", "multipart"]
MEDIA_TYPES: dict[str, BodyKind] = {
    "application/json": "json",
    "multipart/form-data": "multipart",
}


def media_type(content_type: str | None) -> str:
    """The bare, lower-case media type of a ``Content-Type`` header ('' when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def event_body_kind(request: Request) -> BodyKind:
    """``"json"`` or ``"multipart"`` from the request's ``Content-Type``; 415 for anything else."""
    found = media_type(request.headers.get("content-type"))
    kind = MEDIA_TYPES.get(found)
    if kind is None:
        given = f"Content-Type {found!r}" if found else "no Content-Type"
        raise Problem(
            415,
            f"unsupported media type: {given}; send application/json "
            "(or multipart/form-data with a document)",
        )
    return kind
