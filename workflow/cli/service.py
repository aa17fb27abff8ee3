"""Service commands: tick, outbox (list and resend)."""

from __future__ import annotations
