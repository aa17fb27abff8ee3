"""The dashboard's pages, one small router each, sharing :mod:`workflow.web.pages.common`."""

from __future__ import annotations

from fastapi import APIRouter

from workflow.web.pages import agreement, diagram, matrix, outbox, scores, tasks

router = APIRouter(include_in_schema=False)
for _module in (tasks, agreement, matrix, outbox, scores, diagram):
    router.include_router(_module.router)

__all__ = ["router"]
