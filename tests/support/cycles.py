"""cycle_2554.toml as text, and changes to it for the ``load`` tests: ``TEXT`` the file,
``GROUP_NE1`` the provinces line of the northeast-upper-1 group and ``BUENG_KAN`` an
``[[organisations]]`` block to add (TH-38, not in the file), ``without_organisation(text,
code)`` the text with one organisation taken out, ``write(tmp_path, text)`` the text as a file.
Replacing one line with another is ``tests.support.validate.edit``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import CYCLE_2554

TEXT = CYCLE_2554.read_text(encoding="utf-8")
GROUP_NE1 = 'provinces = ["TH-43", "TH-42", "TH-41", "TH-39"]'
BUENG_KAN = """
[[organisations]]
id = "TH-38"
kind = "province"
name_th = "บึงกาฬ"
name_en = "Bueng Kan"
email = "governor@th-38.rubrong.example"
supervisor_email = "supervisor@th-38.rubrong.example"
"""


def write(tmp_path: Path, text: str, name: str = "cycle.toml") -> str:
    """Write ``text`` to ``tmp_path / name``; its path as a command-line argument."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def without_organisation(text: str, code: str) -> str:
    """``text`` without the ``[[organisations]]`` block of ``code`` (and not in its group)."""
    block = re.compile(rf'\n\[\[organisations\]\]\nid = "{code}"[^\[]*', re.MULTILINE)
    assert len(block.findall(text)) == 1
    text = block.sub("\n", text)
    return re.sub(rf'"{code}", |, "{code}"', "", text, count=1)
