"""OpenAPI fragments: the JSON bodies the API answers with, as CONTRACT.md defines them.

Responses are the CLI's ``--json`` rows (``workflow.views``), so they are described here as JSON
Schema rather than re-modelled; every object allows more keys than it requires.
"""

from __future__ import annotations

from typing import Any

from states.machine import EVENTS
from workflow.web.problems import PROBLEM_TYPE, TITLES

NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}
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
    "required": ["name", "role", "token_prefix", "created_at", "revoked_at", "active"],
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
                            "type": "string",
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
