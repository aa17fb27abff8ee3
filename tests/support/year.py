"""A small simulated year: a generated cycle (1 group ``G`` with provinces ``P1`` and ``P2``,
1 agency ``A``, the published dates kept) and ``SCENARIO``, the events of the year, some of them
on a notice's own instant or late. ``write_inputs(folder)`` writes the cycle file and the
scenario file (JSONL, for ``rubrong simulate --scenario``) and returns them with the cycle as
parsed by ``tomllib``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from bench.cyclegen import generate_cycle
from tests.conftest import kpi_set

G, P1, P2, A = "group-01", "TH-11", "TH-12", "agency-000001"
KPIS = kpi_set()
WAIVE = {"milestone": "kpi_audit", "reason": "ยกเว้นโดยมติ อ.ก.พ.ร. / waived by the committee"}

# (at, agreement, event, role, data). "own" is the agreement's own role.
SCENARIO: list[tuple[str, str, str, str, dict[str, Any] | None]] = [
    ("2010-09-01T10:00", G, "propose_kpis", "own", KPIS),
    ("2010-09-05T10:00", A, "propose_kpis", "own", KPIS),
    ("2010-09-12T09:00", P1, "propose_kpis", "own", KPIS),  # the 1-day reminder's instant
    ("2010-09-16T11:00", P2, "propose_kpis", "own", KPIS),  # late: after the overdue notice
    ("2010-09-20T10:00", G, "agree", "committee", None),
    ("2010-09-20T10:00", P1, "agree", "committee", None),
    ("2010-09-20T10:00", P2, "agree", "committee", None),
    ("2010-09-20T10:00", A, "agree", "committee", None),
    ("2010-11-15T10:00", G, "sign", "admin", None),
    ("2010-11-15T10:00", P1, "sign", "admin", None),
    ("2010-11-15T10:00", A, "sign", "admin", None),
    ("2010-11-20T10:00", G, "publish", "own", None),
    ("2010-12-03T10:00", P2, "sign", "admin", None),  # after the overdue digest, before escalation
    ("2010-12-10T10:00", P1, "publish", "own", None),
    ("2011-01-20T10:00", G, "submit_kpi_template", "own", None),
    ("2011-01-31T23:59:59", P1, "submit_kpi_template", "own", None),  # the last second
    ("2011-02-10T10:00", G, "send_kpi_audit", "admin", None),
    ("2011-02-21T09:00", P1, "send_kpi_audit", "admin", None),  # the 7-day digest's instant
    ("2011-02-25T10:00", P2, "waive", "admin", WAIVE),
    ("2011-02-25T10:00", A, "waive", "admin", WAIVE),
    ("2011-04-30T23:59:59", G, "submit_sar6", "own", None),
    ("2011-05-06T10:00", P1, "submit_sar6", "own", None),  # late, before the escalation
    ("2011-07-01T10:00", G, "submit_esar9", "own", None),
    ("2011-07-02T09:00", P1, "submit_esar9", "own", None),  # the 14-day reminder's instant
    ("2011-07-10T10:00", P2, "submit_esar9", "own", None),
    ("2011-10-20T10:00", G, "submit_sar12", "own", None),
    ("2011-11-03T10:00", P1, "submit_sar12", "own", None),
    ("2011-11-10T10:00", P2, "submit_sar12", "own", None),  # after the escalation
]


def write_inputs(folder: Path) -> tuple[Path, Path, dict[str, Any]]:
    """The cycle file (1 group, 2 provinces, 1 agency; dates kept) and the scenario file."""
    text = generate_cycle(
        cycle_id="2554", groups=1, provinces_per_group=2, agencies=1, deadline_policy="keep"
    )
    cycle = folder / "cycle.toml"
    cycle.write_text(text, encoding="utf-8")
    lines = []
    for at, agreement, event, role, data in SCENARIO:
        item: dict[str, Any] = {"at": at, "agreement": agreement, "event": event, "as": role}
        if data is not None:
            item["data"] = data
        lines.append(json.dumps(item, ensure_ascii=False))
    scenario = folder / "scenario.jsonl"
    scenario.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cycle, scenario, tomllib.loads(text)
