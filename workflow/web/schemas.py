"""OpenAPI fragments: the JSON bodies the API answers with, as CONTRACT.md defines them.

Responses are the CLI's ``--json`` rows (``workflow.store.views``), so they are described here as
JSON
Schema rather than re-modelled; every object allows more keys than it requires.
"""

from __future__ import annotations

from typing import Any

from states.machine import EVENTS
from workflow.web.problems import PROBLEM_TYPE, TITLES

NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}
# A time a client sends (``at``, ``as_of``): an RFC 3339 date-time or a bare date. Blank or
# malformed text is answered 422; describing it exactly keeps schemathesis' data checks honest.
TIME: dict[str, Any] = {
    "type": "string",
    "anyOf": [{"format": "date-time"}, {"format": "date"}],
}
INSTANT: dict[str, Any] = {"type": ["string", "null"], "description": "ISO 8601 with +07:00"}

AGREEMENT: dict[str, Any] = {
    "type": "object",
    "required": ["agreement", "kind", "group", "name_th", "state", "next_due", "overdue"],
    "properties": {
        "agreement": {"type": "string"},
        "kind": {"type": "string", "enum": ["province", "group", "agency"]},
        "group": NULLABLE_STRING,
        "name_th": {"type": "string"},
        "state": {"type": "string"},
        "next_due": {
            "type": ["object", "null"],
            "properties": {"milestone": {"type": "string"}, "due": {"type": "string"}},
        },
        "overdue": {"type": "array", "items": {"type": "string"}},
        "overdue_own": {
            "type": "array",
            "items": {"type": "string"},
            "description": "missed milestones that are the organisation's move",
        },
        "overdue_opdc": {
            "type": "array",
            "items": {"type": "string"},
            "description": "missed milestones waiting for the OPDC (or its committee)",
        },
    },
}
MILESTONE: dict[str, Any] = {
    "type": "object",
    "required": [
        "agreement", "milestone", "kind", "actor", "due", "status", "met_at",
        "late_business_days",
    ],
    "properties": {
        "agreement": {"type": "string"},
        "milestone": {"type": "string"},
        "kind": {"type": "string", "enum": ["deliverable", "cutoff", "window"]},
        "actor": {"type": "string"},
        "due": NULLABLE_STRING,
        "status": {"type": "string"},
        "met_at": INSTANT,
        "late_business_days": {"type": ["integer", "null"]},
    },
}  # fmt: skip
HISTORY_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": [
        "seq", "agreement", "kind", "event", "from", "to", "actor", "at", "recorded_at",
        "data", "prev_hash", "hash",
    ],
    "properties": {
        "seq": {"type": "integer"},
        "agreement": NULLABLE_STRING,
        "kind": {"type": "string", "enum": ["event", "timer", "config"]},
        "event": {"type": "string"},
        "from": NULLABLE_STRING,
        "to": NULLABLE_STRING,
        "actor": {"type": "string"},
        "at": INSTANT,
        "recorded_at": INSTANT,
        "data": {"type": "object"},
        "prev_hash": {"type": "string"},
        "hash": {"type": "string"},
    },
}  # fmt: skip
OUTBOX_ROW: dict[str, Any] = {
    "type": "object",
    "required": [
        "key", "agreement", "milestone", "kind", "to", "subject", "send_at", "status",
        "attempts", "message_id",
    ],
    "properties": {
        "key": {"type": "string"},
        "agreement": NULLABLE_STRING,
        "milestone": NULLABLE_STRING,
        "kind": {"type": "string"},
        "to": {"type": "string"},
        "subject": {"type": "string"},
        "send_at": INSTANT,
        "status": {"type": "string"},
        "attempts": {"type": "integer"},
        "message_id": {"type": "string"},
    },
}  # fmt: skip
SCORE: dict[str, Any] = {
    "type": "object",
    "required": [
        "agreement", "kpis", "dimensions", "composite", "late_business_days", "penalty",
        "final", "tier",
    ],
}  # fmt: skip
VERIFY: dict[str, Any] = {
    "type": "object",
    "required": ["ok", "entries", "head"],
    "description": (
        "Always 200: the verification is the resource. A broken chain answers `ok: false` "
        "with `first_bad_seq` and `reason` (the CLI exits 6 in that case)."
    ),
    "properties": {
        "ok": {"type": "boolean"},
        "entries": {"type": "integer"},
        "head": {"type": "string"},
        "first_bad_seq": {"type": ["integer", "null"]},
        "reason": NULLABLE_STRING,
    },
}
USER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "role", "email", "revoked", "token_prefix", "created_at"],
}
SECURITY_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "at", "actor", "agreement", "action", "reason"],
}
PROBLEM: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}
EVENT_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["event"],
                    "additionalProperties": False,
                    "properties": {
                        "event": {"type": "string", "enum": list(EVENTS)},
                        "data": {"type": ["object", "null"]},
                        "at": {
                            **TIME,
                            "description": "effective time, ISO 8601 (admin only)",
                        },
                    },
                }
            }
        },
    }
}


def ok(schema: dict[str, Any], *codes: int, many: bool = False) -> dict[int | str, Any]:
    """``responses=`` for an endpoint: 200 with ``schema`` (or an array of it) plus problems."""
    body = {"type": "array", "items": schema} if many else schema
    out: dict[int | str, Any] = {200: {"content": {"application/json": {"schema": body}}}}
    for code in (401, 413, 422, *codes):
        out[code] = {
            "description": TITLES.get(code, "Error"),
            "content": {PROBLEM_TYPE: {"schema": PROBLEM}},
        }
    return out


# Every status an /api/v1 operation can answer besides its success, decided in one place and
# added to whatever the route itself declares (``complete_openapi``):
# 401 no or bad token · 413 body too large (before authentication) · 422 a malformed query,
# path, body or time · and for writes 403 not authorised · 404 unknown agreement ·
# 409 not allowed now or lost race · 415 a body that is neither JSON nor multipart.
STATUSES_ALWAYS = (401, 413, 422)
STATUSES_BY_METHOD: dict[str, tuple[int, ...]] = {"post": (403, 404, 409, 415)}
# Query parameters that carry a time and are described by ``TIME``.
TIME_PARAMETERS = ("as_of",)


def complete_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """Add the statuses of the table above to every /api/v1 operation; describe time params.

    Returns ``document``, changed in place. Routes may declare more statuses (403 on admin-only
    reads, 404 where an agreement is named); nothing declared is removed.
    """
    problem = {"content": {PROBLEM_TYPE: {"schema": PROBLEM}}}
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in (*STATUSES_ALWAYS, *STATUSES_BY_METHOD.get(method, ())):
                responses.setdefault(
                    str(code), {"description": TITLES.get(code, "Error"), **problem}
                )
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter.get("name") in TIME_PARAMETERS:
                    parameter["schema"] = {**TIME, "description": "ISO 8601"}
    return document
