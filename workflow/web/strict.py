"""What the API refuses beyond its declared parameters, and the OpenAPI document completed.

* ``known_query``: a query parameter an operation does not declare, or one given twice (every
  parameter is a single value), is refused with 422, as the OpenAPI document promises.
* ``install_openapi``: ``/openapi.json`` lists, for every operation, every status it can
  answer (the table in :mod:`workflow.web.schemas`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from workflow.rules.errors import BadInput, quoted
from workflow.web.schemas import complete_openapi


def known_query(request: Request) -> None:
    """A router dependency: 422 when the query names a parameter the operation lacks."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    allowed: set[str] = set()
    pending = [dependant]
    while pending:  # the operation's own parameters and those of its dependencies
        current = pending.pop()
        allowed.update(param.alias for param in current.query_params)
        pending.extend(current.dependencies)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        names = ", ".join(quoted(name) for name in unknown[:3])
        known = ", ".join(sorted(allowed)) or "none"
        raise BadInput(f"unknown query parameter(s) {names} (known: {known})")
    repeated = sorted(
        {
            key
            for key, _ in request.query_params.multi_items()
            if len(request.query_params.getlist(key)) > 1
        }
    )
    if repeated:
        names = ", ".join(quoted(name) for name in repeated[:3])
        raise BadInput(f"query parameter(s) {names} given more than once")


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the generated document completed by the status table."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
