"""The web layer: REST API (``/api/v1``) and dashboard (``/``), built by ``create_app``."""

from __future__ import annotations

from workflow.web.app import create_app

__all__ = ["create_app"]
