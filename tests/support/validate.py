"""Shared by the ``rubrong validate`` tests (``tests/test_validate_*.py``) and the modules that
edit a cycle file: a small valid cycle file (``BASE``), ``edit`` and ``line`` to change it and find
a line in it, and ``validate``/``problems``/``only_problem`` to run the command and read its
``FILE:LINE: message`` lines.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import Cli, Result

BASE = """\
# A small valid cycle file: 2 groups, 3 provinces, 1 agency.
[cycle]
id = "2554"
name_th = "รอบทดสอบ"
starts = "2010-10-01"
ends = "2011-09-30"
timezone = "Asia/Bangkok"
opdc_email = "opdc@opdc.example"
opdc_supervisor_email = "boss@opdc.example"

[calendar]
holidays = "TH"
deadline_policy = "keep"
remove = [
    { date = "2011-05-02", name = "not a government holiday" },
]

[notifications]
reminders = [14, 7, 1]
overdue_after = 1

[scoring]
dimension_weights = { "1" = 50, "2" = 20, "3" = 10, "4" = 20 }
approved_kpis = ["1.1", "2.1"]
tiers = [
    { name = "ดี", min = "3.5000" },
    { name = "ผ่าน", min = "3.0000" },
]

[[milestones]]
id = "propose_kpis"
kind = "deliverable"
actor = "organisation"
title_th = "เสนอตัวชี้วัด"
due = "2010-09-13"
event = "propose_kpis"

[[milestones]]
id = "sar6"
kind = "deliverable"
actor = "organisation"
title_th = "รายงาน 6 เดือน"
due = "2011-04-30"
event = "submit_sar6"
reminders = [7, 1]

[[milestones]]
id = "sar12"
kind = "deliverable"
actor = "organisation"
title_th = "รายงาน 12 เดือน"
due = "2011-10-31"
event = "submit_sar12"
penalty_per_business_day = "0.0500"

[[milestones]]
id = "change_requests"
kind = "cutoff"
actor = "organisation"
title_th = "วันสุดท้ายของคำขอเปลี่ยนแปลง"
due = "2011-03-31"

[[milestones]]
id = "consultation"
kind = "window"
actor = "opdc"
title_th = "ให้คำปรึกษา"
start = "2011-06-01"
due = "2011-06-30"

[[groups]]
id = "north-upper-1"
name_th = "ภาคเหนือตอนบน 1"
email = "office@north-upper-1.example"
supervisor_email = "boss@north-upper-1.example"
provinces = ["TH-50", "TH-58"]

[[groups]]
id = "north-upper-2"
name_th = "ภาคเหนือตอนบน 2"
email = "office@north-upper-2.example"
supervisor_email = "boss@north-upper-2.example"
provinces = [
    "TH-57",  # Chiang Rai
]

[[organisations]]
id = "TH-50"
kind = "province"
name_th = "เชียงใหม่"
email = "gov@th-50.example"
supervisor_email = "boss@th-50.example"

[[organisations]]
id = "TH-58"
kind = "province"
name_th = "แม่ฮ่องสอน"
email = "gov@th-58.example"
supervisor_email = "boss@th-58.example"

[[organisations]]
id = "TH-57"
kind = "province"
name_th = "เชียงราย"
email = "gov@th-57.example"
supervisor_email = "boss@th-57.example"

[[organisations]]
id = "dept-1"
kind = "agency"
name_th = "กรมทดสอบ"
email = "head@dept-1.example"
supervisor_email = "boss@dept-1.example"
"""

PROBLEM = re.compile(r"^(?P<file>.+):(?P<line>\d+): (?P<message>.+)$")


def edit(text: str, old: str, new: str) -> str:
    """``text`` with the one occurrence of ``old`` replaced by ``new``."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line(text: str, needle: str, nth: int = 0) -> int:
    """The 1-based line number of the ``nth`` line of ``text`` containing ``needle``."""
    found = [n for n, row in enumerate(text.splitlines(), start=1) if needle in row]
    assert len(found) > nth, f"{needle!r} found on lines {found}"
    return found[nth]


def milestone_line(text: str, ident: str) -> int:
    """The ``[[milestones]]`` header of the milestone with ``id = ident``."""
    id_line = line(text, f'id = "{ident}"')
    rows = text.splitlines()
    return max(n for n in range(1, id_line + 1) if rows[n - 1].startswith("[[milestones]]"))


def validate(cli: Cli, tmp_path: Path, text: str, name: str = "cycle.toml") -> Result:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return cli("validate", str(path))


def problems(result: Result, name: str = "cycle.toml") -> list[tuple[int, str]]:
    """``(line, message)`` of every stdout line, checking the ``FILE:LINE: message`` form."""
    out: list[tuple[int, str]] = []
    for row in result.out.splitlines():
        match = PROBLEM.match(row)
        assert match, f"not FILE:LINE: message: {row!r}"
        assert match["file"].endswith(name), row
        out.append((int(match["line"]), match["message"]))
    return out


def only_problem(cli: Cli, tmp_path: Path, text: str) -> tuple[int, str]:
    """Validate ``text``; it must have exactly one problem (exit 2); return it."""
    result = validate(cli, tmp_path, text)
    assert result.code == 2, (result.code, result.out, result.err)
    found = problems(result)
    assert len(found) == 1, found
    assert "1 problem" in result.err
    return found[0]
