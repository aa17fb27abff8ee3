"""The declared machine, drawn as inline SVG on the server (``?state=`` highlights one)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from states.machine import EVENTS, STATES, mermaid
from workflow.rules.access import Resource
from workflow.store.users import User
from workflow.web.pages.agreement import diagram
from workflow.web.pages.common import render, signed_in, words_for

router = APIRouter(include_in_schema=False)


@router.get("/diagram")
def diagram_page(request: Request, state: str = "") -> Response:
    """The state diagram, the events with who may fire them, and the mermaid text."""
    user = signed_in(request, Resource.MACHINE)
    if not isinstance(user, User):
        return user
    current = state if state in STATES else ""
    events = [(name, sorted(spec.roles)) for name, spec in EVENTS.items()]
    return render(
        request,
        "diagram.html.j2",
        user,
        diagram_svg=diagram(words_for(request), current),
        events=events,
        mermaid=mermaid(),
        current=current,
    )
