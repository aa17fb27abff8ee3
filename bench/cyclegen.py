"""Synthetic cycle files for tests and benchmarks.

``generate_cycle`` writes a cycle file (CONTRACT.md, "The cycle file") as TOML text: the same 13
milestones as ``cycle_2554.toml`` (ids, kinds, actors, events, the SAR 12 penalty) moved to another
fiscal year, groups of real ISO 3166-2:TH province codes, one organisation per grouped province,
and any number of extra organisations of kind ``agency`` (in no group), so that a national-size
cycle (10⁵ agreements) can be produced in well under a second.

The text is built as a list of lines and joined once; no TOML library is called per item. Every
value written is either a fixed literal, a generated id, or a name from pycountry / pythainlp passed
through :func:`_q`, so the output is valid TOML by construction.

Differences from ``cycle_2554.toml``, on purpose:

- no ``applies_to``: agencies are subject to every milestone, so benchmarks exercise them;
- no calendar corrections (``add`` / ``remove``): those are facts of FY2554 only;
- placeholder contacts under ``rubrong.example`` and no comments.

Command line::

    python -m bench.cyclegen --agencies 10000 -o file.toml
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import functools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict, Unpack

__all__ = ["CycleOptions", "generate_cycle", "province_codes", "write_cycle"]

DEADLINE_POLICIES = ("keep", "next_business_day")

# Milestones: (id, kind, actor, event, title_th, title_en). Dates come from _milestone_dates.
_MILESTONES: tuple[tuple[str, str, str, str | None, str, str], ...] = (
    (
        "propose_kpis",
        "deliverable",
        "organisation",
        "propose_kpis",
        "เสนอตัวชี้วัดและเกณฑ์การให้คะแนนมายังสำนักงาน ก.พ.ร.",
        "Propose KPIs and scoring criteria to OPDC",
    ),
    (
        "negotiation",
        "window",
        "committee",
        None,
        "เจรจาความเหมาะสมของตัวชี้วัด ค่าเป้าหมาย น้ำหนัก และเกณฑ์การให้คะแนน",
        "Negotiation of KPIs, targets, weights and scoring criteria",
    ),
    ("sign", "deliverable", "opdc", "sign", "ลงนามคำรับรองการปฏิบัติราชการ", "Agreement signed"),
    (
        "publish",
        "deliverable",
        "organisation",
        "publish",
        "เผยแพร่คำรับรองการปฏิบัติราชการในเว็บไซต์",
        "Agreement published on the website",
    ),
    (
        "kpi_template",
        "deliverable",
        "organisation",
        "submit_kpi_template",
        "ส่งรายละเอียดตัวชี้วัด (KPI Template) ให้สำนักงาน ก.พ.ร.",
        "Send the KPI Template to OPDC",
    ),
    (
        "kpi_audit",
        "deliverable",
        "opdc",
        "send_kpi_audit",
        "ส่งผลการตรวจสอบรายละเอียดตัวชี้วัด (KPI Audit)",
        "Send the KPI Audit back",
    ),
    (
        "change_requests",
        "cutoff",
        "organisation",
        None,
        "สิ้นสุดวันรับคำขอเปลี่ยนแปลงตัวชี้วัด น้ำหนัก และเกณฑ์การให้คะแนน",
        "Last day to request a change of KPI, weight or scoring criteria",
    ),
    (
        "sar6",
        "deliverable",
        "organisation",
        "submit_sar6",
        "ส่งรายงานการประเมินผลตนเอง (SAR) รอบ 6 เดือน และกรอก e-SAR Card",
        "Self Assessment Report, 6 months, and e-SAR Card",
    ),
    (
        "consultation",
        "window",
        "opdc",
        None,
        "ให้คำปรึกษาในการปฏิบัติราชการตามคำรับรองการปฏิบัติราชการ",
        "Consultation by OPDC and the KPI owners",
    ),
    (
        "esar9",
        "deliverable",
        "organisation",
        "submit_esar9",
        "กรอก e-SAR Card รอบ 9 เดือน",
        "e-SAR Card, 9 months",
    ),
    (
        "nso_survey",
        "window",
        "nso",
        None,
        "สำนักงานสถิติแห่งชาติสำรวจความพึงพอใจของผู้รับบริการ",
        "Citizen-satisfaction survey by the National Statistical Office",
    ),
    (
        "sar12",
        "deliverable",
        "organisation",
        "submit_sar12",
        "ส่งรายงานการประเมินผลตนเอง (SAR) รอบ 12 เดือน ให้ถึงสำนักงาน ก.พ.ร. และกรอก e-SAR Card",
        "Self Assessment Report, 12 months, and e-SAR Card; must arrive at OPDC",
    ),
    (
        "evaluation",
        "window",
        "opdc",
        None,
        "สำนักงาน ก.พ.ร. ประเมินผลการปฏิบัติราชการ",
        "Evaluation visits by OPDC",
    ),
)

SAR12_PENALTY = "0.0500"


class CycleOptions(TypedDict, total=False):
    """The keyword arguments of :func:`generate_cycle` (for :func:`write_cycle`)."""

    cycle_id: str
    provinces_per_group: int
    groups: int
    agencies: int
    deadline_policy: str
    reminders: tuple[int, ...]


def _q(text: str) -> str:
    """``text`` as a TOML basic string (JSON escaping is a subset of TOML's, bar U+007F)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _milestone_dates(first: int) -> dict[str, tuple[dt.date | None, dt.date | None]]:
    """``{id: (start, due)}`` for the fiscal year 1 Oct ``first`` .. 30 Sep ``first + 1``.

    Same month and day as FY2554; "within month M" dates are the last day of M (so the KPI
    Audit is due 29 Feb in a leap year). ``publish`` has no due date.
    """
    second = first + 1
    return {
        "propose_kpis": (None, dt.date(first, 9, 13)),
        "negotiation": (dt.date(first, 9, 27), dt.date(first, 9, 28)),
        "sign": (None, _month_end(first, 11)),
        "publish": (None, None),
        "kpi_template": (None, _month_end(second, 1)),
        "kpi_audit": (None, _month_end(second, 2)),
        "change_requests": (None, dt.date(second, 3, 31)),
        "sar6": (None, dt.date(second, 4, 30)),
        "consultation": (dt.date(second, 6, 1), dt.date(second, 6, 30)),
        "esar9": (None, dt.date(second, 7, 16)),
        "nso_survey": (dt.date(second, 6, 1), dt.date(second, 8, 31)),
        "sar12": (None, dt.date(second, 10, 31)),
        "evaluation": (dt.date(second, 12, 1), _month_end(second + 1, 1)),
    }


@functools.cache
def _provinces() -> tuple[tuple[str, str, str], ...]:
    """``(code, name_th, name_en)`` of every ISO 3166-2:TH province, in code order.

    Skips TH-10 (Bangkok, a metropolitan administration, not in the scheme) and TH-S (Pattaya, a
    special city). Includes TH-38 (Bueng Kan, a province since 2011): 76 codes.
    """
    import pycountry
    from pythainlp.corpus import provinces as thai_provinces

    def key(name: str) -> str:
        return name.lower().replace(" ", "").replace("-", "")

    details: list[dict[str, str]] = thai_provinces(details=True)  # type: ignore[assignment]
    thai = {key(p["name_en"]): p["name_th"] for p in details}
    subdivisions: Any = pycountry.subdivisions  # untyped
    rows = []
    for sub in subdivisions.get(country_code="TH"):
        code, name_en = str(sub.code), str(sub.name)
        if code in ("TH-10", "TH-S"):
            continue
        rows.append((code, thai.get(key(name_en), name_en), name_en))
    rows.sort(key=lambda row: int(row[0][3:]))
    return tuple(rows)


def province_codes() -> list[str]:
    """The ISO 3166-2:TH province codes a generated cycle can use, in order."""
    return [code for code, _, _ in _provinces()]


def _check(
    cycle_id: str,
    provinces_per_group: int,
    groups: int,
    agencies: int,
    deadline_policy: str,
    reminders: tuple[int, ...],
) -> int:
    """Validate the arguments; return the Gregorian year in which the fiscal year starts."""
    if not (cycle_id.isascii() and cycle_id.isdigit()) or not 2500 <= int(cycle_id) <= 9999:
        raise ValueError(f"cycle_id must be a B.E. year such as '2560', not {cycle_id!r}")
    if groups < 0 or agencies < 0:
        raise ValueError("groups and agencies must be ≥ 0")
    if provinces_per_group < 1:
        raise ValueError("provinces_per_group must be ≥ 1")
    available = len(_provinces())
    if groups * provinces_per_group > available:
        raise ValueError(
            f"{groups} groups × {provinces_per_group} provinces = "
            f"{groups * provinces_per_group} > the {available} Thai province codes"
        )
    if deadline_policy not in DEADLINE_POLICIES:
        raise ValueError(f"deadline_policy must be one of {DEADLINE_POLICIES}")
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in reminders):
        raise ValueError("reminder offsets must be whole numbers ≥ 1")
    return int(cycle_id) - 544


def _header(
    cycle_id: str, first: int, deadline_policy: str, reminders: tuple[int, ...]
) -> list[str]:
    days = ", ".join(str(n) for n in reminders)
    return [
        "# Synthetic cycle generated by bench.cyclegen (tests and benchmarks only).",
        "",
        "[cycle]",
        f'id = "{cycle_id}"',
        f'name_th = "รอบการประเมินทดสอบ ประจำปีงบประมาณ พ.ศ. {cycle_id}"',
        f'name_en = "Synthetic cycle, fiscal year B.E. {cycle_id}"',
        f'starts = "{dt.date(first, 10, 1)}"',
        f'ends = "{dt.date(first + 1, 9, 30)}"',
        'timezone = "Asia/Bangkok"',
        'opdc_email = "opdc@opdc.rubrong.example"',
        'opdc_supervisor_email = "supervisor@opdc.rubrong.example"',
        "",
        "[calendar]",
        'holidays = "TH"',
        f'deadline_policy = "{deadline_policy}"',
        'receiver_scope = "TH-10"',
        "",
        "[notifications]",
        'send_time = "09:00"',
        f"reminders = [{days}]",
        "overdue_after = 1",
        "escalate_after = 7",
        "catch_up_days = 3",
        "max_attempts = 8",
        "",
        "[scoring]",
        'dimension_weights = { "1" = 50, "2" = 20, "3" = 10, "4" = 20 }',
        'approved_kpis = ["1.1", "1.2", "2.1", "3.1", "4.1"]',
        "tiers = [",
        '    { name = "ดีเด่น", min = "4.5000" },',
        '    { name = "ดีมาก", min = "4.0000" },',
        '    { name = "ดี", min = "3.5000" },',
        '    { name = "ผ่านเกณฑ์", min = "3.0000" },',
        "]",
    ]


def _milestone_lines(first: int) -> list[str]:
    dates = _milestone_dates(first)
    out: list[str] = []
    for mid, kind, actor, event, title_th, title_en in _MILESTONES:
        start, due = dates[mid]
        out += ["", "[[milestones]]", f'id = "{mid}"', f'kind = "{kind}"', f'actor = "{actor}"']
        out += [f"title_th = {_q(title_th)}", f"title_en = {_q(title_en)}"]
        if start is not None:
            out.append(f'start = "{start}"')
        if due is not None:
            out.append(f'due = "{due}"')
        if event is not None:
            out.append(f'event = "{event}"')
        if mid == "sar12":
            out.append(f'penalty_per_business_day = "{SAR12_PENALTY}"')
    return out


def generate_cycle(
    *,
    cycle_id: str = "2560",
    provinces_per_group: int = 4,
    groups: int = 3,
    agencies: int = 0,
    deadline_policy: str = "next_business_day",
    reminders: tuple[int, ...] = (14, 7, 1),
) -> str:
    """Return a synthetic cycle file as TOML text.

    ``cycle_id`` is the B.E. year; the fiscal year runs 1 Oct (year − 544) to 30 Sep (year − 543).
    ``groups`` groups ``group-01`` … each take the next ``provinces_per_group`` province codes
    (TH-11, TH-12, …; see :func:`province_codes`) and each of those provinces becomes an
    organisation. ``agencies`` adds organisations ``agency-000001`` … of kind ``agency`` in no
    group. ``reminders`` is the cycle-wide default reminder offsets (days before a due date).

    Raises ``ValueError`` for a non-year ``cycle_id``, negative counts, more grouped provinces than
    Thai province codes, an unknown ``deadline_policy`` or a reminder offset below 1.
    """
    first = _check(cycle_id, provinces_per_group, groups, agencies, deadline_policy, reminders)
    out = _header(cycle_id, first, deadline_policy, reminders)
    out += _milestone_lines(first)

    chosen = _provinces()[: groups * provinces_per_group]
    for g in range(groups):
        members = chosen[g * provinces_per_group : (g + 1) * provinces_per_group]
        gid = f"group-{g + 1:02d}"
        codes = ", ".join(f'"{code}"' for code, _, _ in members)
        out += [
            "",
            "[[groups]]",
            f'id = "{gid}"',
            f'name_th = "กลุ่มจังหวัดที่ {g + 1}"',
            f'name_en = "Province group {g + 1}"',
            f'email = "office@{gid}.rubrong.example"',
            f'supervisor_email = "supervisor@{gid}.rubrong.example"',
            f"provinces = [{codes}]",
        ]
    for code, name_th, name_en in chosen:
        host = code.lower()
        out += [
            "",
            "[[organisations]]",
            f'id = "{code}"',
            'kind = "province"',
            f"name_th = {_q(name_th)}",
            f"name_en = {_q(name_en)}",
            f'email = "governor@{host}.rubrong.example"',
            f'supervisor_email = "supervisor@{host}.rubrong.example"',
        ]
    width = max(6, len(str(agencies)))
    for n in range(1, agencies + 1):
        num = f"{n:0{width}d}"
        out.append(
            f'\n[[organisations]]\nid = "agency-{num}"\nkind = "agency"\n'
            f'name_th = "หน่วยงาน {num}"\nname_en = "Agency {num}"\n'
            f'email = "head@agency-{num}.rubrong.example"\n'
            f'supervisor_email = "supervisor@agency-{num}.rubrong.example"'
        )
    out.append("")
    return "\n".join(out)


def write_cycle(path: Path, **kwargs: Unpack[CycleOptions]) -> Path:
    """Write :func:`generate_cycle`'s text (UTF-8) to ``path`` and return ``path``."""
    path.write_text(generate_cycle(**kwargs), encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.cyclegen``: print a synthetic cycle file, or write it with ``-o``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.cyclegen", description="Generate a synthetic rubrong cycle file."
    )
    parser.add_argument("--cycle-id", default="2560", help="B.E. fiscal year (default 2560)")
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--provinces-per-group", type=int, default=4)
    parser.add_argument("--agencies", type=int, default=0)
    parser.add_argument("--deadline-policy", choices=DEADLINE_POLICIES, default="next_business_day")
    parser.add_argument("--reminders", type=int, nargs="+", default=[14, 7, 1], metavar="DAYS")
    parser.add_argument("-o", "--output", type=Path, help="file to write (default stdout)")
    args = parser.parse_args(argv)
    options = CycleOptions(
        cycle_id=args.cycle_id,
        groups=args.groups,
        provinces_per_group=args.provinces_per_group,
        agencies=args.agencies,
        deadline_policy=args.deadline_policy,
        reminders=tuple(args.reminders),
    )
    try:
        if args.output is None:
            sys.stdout.write(generate_cycle(**options))
        else:
            write_cycle(args.output, **options)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
