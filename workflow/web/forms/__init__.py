"""Forms that fire events from the dashboard, and the e-SAR Card drafts API.

``router`` holds the pages (the e-SAR Card, the KPI and change request forms, the evaluator's
and the waiver forms, the one-click actions, document downloads); ``api_router`` the draft
endpoints under ``/api/v1``. Every submission goes through :func:`workflow.usecases.fire.fire`.
"""

from __future__ import annotations

from fastapi import APIRouter

from workflow.web.forms import api, esar, events, kpis

router = APIRouter(include_in_schema=False)
router.include_router(esar.router)
router.include_router(events.router)
router.include_router(kpis.router)
api_router = api.router

__all__ = ["api_router", "router"]
