"""Build ``demo_2554.jsonl``: a deterministic year for the 93 agreements of cycle_2554.toml.

Most organisations act on time; a few are late (some by a few business days, one by 25), a few
never send a report, some propose a KPI off the approved list and go through negotiation.
Run ``python scenarios/build_demo.py`` to regenerate the file (the output is committed).
"""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CYCLE = HERE.parent / "cycle_2554.toml"
OUT = HERE / "demo_2554.jsonl"


def kpi_set(first: str) -> dict[str, Any]:
    """Four KPIs, one per dimension, weights 50/20/10/20."""
    return {
        "kpis": [
            {
                "id": first,
                "dimension": 1,
                "name_th": "อัตราการขยายตัวของผลิตภัณฑ์มวลรวมจังหวัด",
                "unit": "ร้อยละ",
                "direction": "higher",
                "weight": 50,
                "baseline": 3,
                "levels": [1, 2, 3, 4, 5],
            },
            {
                "id": "2.1",
                "dimension": 2,
                "name_th": "ความพึงพอใจของผู้รับบริการ",
                "unit": "ร้อยละ",
                "direction": "higher",
                "weight": 20,
                "baseline": 80,
                "levels": [70, 75, 80, 85, 90],
            },
            {
                "id": "3.1",
                "dimension": 3,
                "name_th": "ระยะเวลาการให้บริการ",
                "unit": "วัน",
                "direction": "lower",
                "weight": 10,
                "baseline": 10,
                "levels": [12, 10, 8, 6, 4],
            },
            {
                "id": "4.1",
                "dimension": 4,
                "name_th": "ระดับความสำเร็จของการพัฒนาองค์การ",
                "unit": "ระดับ",
                "direction": "higher",
                "weight": 20,
                "baseline": 3,
                "levels": [1, 2, 3, 4, 5],
            },
        ]
    }


def main() -> None:
    """Write the scenario file."""
    doc = tomllib.loads(CYCLE.read_text(encoding="utf-8"))
    ids = [g["id"] for g in doc["groups"]] + [o["id"] for o in doc["organisations"]]
    rng = random.Random(2554)
    lines: list[dict[str, Any]] = []

    def act(
        at: str, agreement: str, event: str, role: str = "own", data: dict[str, Any] | None = None
    ) -> None:
        item: dict[str, Any] = {"at": at, "agreement": agreement, "event": event, "as": role}
        if data is not None:
            item["data"] = data
        lines.append(item)

    never_sar12 = set(rng.sample(ids, 3))
    negotiating = set(rng.sample(sorted(set(ids) - never_sar12), 6))
    late_propose = set(rng.sample(ids, 4))
    late_template = set(rng.sample(ids, 5))
    late_sar6 = set(rng.sample(ids, 6))
    late_sar12 = sorted(set(rng.sample(sorted(set(ids) - never_sar12), 5)))
    for ident in ids:
        first = "1.9" if ident in negotiating else "1.1"
        act(
            "2010-09-15T10:00" if ident in late_propose else "2010-09-10T10:00",
            ident,
            "propose_kpis",
            data=kpi_set(first),
        )
    for ident in ids:
        if ident in negotiating:
            act("2010-09-27T09:00", ident, "start_negotiation", "admin")
            act("2010-09-28T15:00", ident, "agree", "committee", data=kpi_set("1.2"))
        else:
            act("2010-09-28T15:00", ident, "agree", "committee")
    for ident in ids:
        act("2010-11-25T10:00", ident, "sign", "admin")
        if rng.random() < 0.8:
            act("2010-12-01T10:00", ident, "publish")
    for ident in ids:
        act(
            "2011-02-04T10:00" if ident in late_template else "2011-01-25T10:00",
            ident,
            "submit_kpi_template",
        )
    for ident in ids:
        act("2011-02-21T10:00", ident, "send_kpi_audit", "admin")
    change = ids[5]
    act(
        "2011-03-15T10:00",
        change,
        "request_change",
        data={"reason": "budget", "explanation": "งบประมาณไม่ได้รับการจัดสรร", **kpi_set("1.1")},
    )
    act("2011-03-25T10:00", change, "approve_change", "admin")
    act(
        "2011-04-01T10:00",
        ids[6],
        "request_change",
        data={"reason": "external", "explanation": "อุทกภัย", **kpi_set("1.1")},
    )
    for ident in ids:
        act("2011-05-06T10:00" if ident in late_sar6 else "2011-04-27T10:00", ident, "submit_sar6")
    for ident in ids:
        act("2011-07-14T10:00", ident, "submit_esar9")
    late_days = [
        "2011-11-01T10:00",
        "2011-11-03T10:00",
        "2011-11-08T10:00",
        "2011-11-15T10:00",
        "2011-12-06T10:00",
    ]
    for ident in ids:
        if ident in never_sar12:
            continue
        at = late_days[late_sar12.index(ident)] if ident in late_sar12 else "2011-10-25T10:00"
        act(at, ident, "submit_sar12")
    for ident in ids:
        if ident in never_sar12:
            continue  # never sent the SAR 12: stays unevaluated and unscored
        results = {
            "1.1": round(rng.uniform(1.5, 5.5), 2),
            "2.1": round(rng.uniform(72, 92), 1),
            "3.1": round(rng.uniform(4, 12), 1),
            "4.1": rng.choice([2, 3, 3.5, 4, 4.5, 5]),
        }
        if ident in negotiating:
            results["1.2"] = results.pop("1.1")
        act("2011-12-20T10:00", ident, "evaluate", "evaluator", data={"results": results})
    for ident in (i for i in ids if i not in never_sar12):
        act(
            "2012-01-25T10:00",
            ident,
            "approve_results",
            "admin",
            data={"decision": "มติ ก.พ.ร. ครั้งที่ 1/2555"},
        )
        act("2012-02-10T10:00", ident, "allocate_incentive", "admin")
    lines.sort(key=lambda item: item["at"])  # stable: file order kept at equal times
    OUT.write_text(
        "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in lines), encoding="utf-8"
    )
    print(f"wrote {OUT} ({len(lines)} actions)")


if __name__ == "__main__":
    main()
