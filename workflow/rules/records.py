"""Small records read back from the database, with no database library behind them.

``Agreement`` lives here rather than in ``workflow.store.repository`` (which re-exports it) so that
the
fast read path (``workflow.store.read_views`` over ``workflow.store.dbapi``) can build one without
importing SQLAlchemy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Agreement:
    """One agreement joined with its organisation.

    The JSON columns are kept as stored text and parsed on first use (``kpis``,
    ``change_request``, ``results``): most events never look at them.
    """

    pk: int
    cycle_id: str
    org_id: str
    kind: str
    group_id: str | None
    name_th: str
    name_en: str | None
    email: str
    supervisor_email: str
    state: str
    version: int
    published: bool
    kpis_json: str | None
    kpi_version: int
    change_request_json: str | None
    results_json: str | None
    tier: str | None
    last_event_at: int | None

    @cached_property
    def kpis(self) -> list[dict[str, Any]] | None:
        """The current KPI set (``[{id, dimension, …}, …]``), if any."""
        value: list[dict[str, Any]] | None = _loads(self.kpis_json)
        return value

    @cached_property
    def change_request(self) -> dict[str, Any] | None:
        """The open change request, if any."""
        value: dict[str, Any] | None = _loads(self.change_request_json)
        return value

    @cached_property
    def results(self) -> dict[str, Any] | None:
        """The evaluated results, if any."""
        value: dict[str, Any] | None = _loads(self.results_json)
        return value


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)
