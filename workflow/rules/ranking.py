"""The ``report`` command: ranking agreements by final score and writing CSV, JSON, XLSX, SVG.

Ranking is competition ranking ("1, 2, 2, 4") on ``final`` (highest first); equal finals list
in agreement-id order; rows without a final come last with ``rank`` null. ``kind_rank`` is the
same ranking among the agreements of one kind (province, group, agency).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

REPORT_KEYS = (
    "rank",
    "kind_rank",
    "agreement",
    "kind",
    "name_th",
    "composite",
    "penalty",
    "final",
    "tier",
)

HEADERS_TH_EN: dict[str, tuple[str, str]] = {
    "rank": ("อันดับ", "Rank"),
    "kind_rank": ("อันดับในประเภท", "Rank in kind"),
    "agreement": ("รหัสคำรับรอง", "Agreement"),
    "kind": ("ประเภท", "Kind"),
    "name_th": ("ชื่อ", "Name"),
    "composite": ("คะแนนรวม", "Composite"),
    "penalty": ("คะแนนที่ถูกหัก", "Penalty"),
    "final": ("คะแนนสุทธิ", "Final"),
    "tier": ("ระดับ", "Tier"),
}

_SCORE_KEYS = ("composite", "penalty", "final")
_COLUMN_WIDTHS = (9, 12, 18, 11, 34, 12, 12, 12, 16)


def _decimal(value: object) -> Decimal | None:
    """A score cell as a Decimal (from a string, Decimal or number), None when empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a score: {value!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a score: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"not a score: {value!r}")
    return number


def _score_text(value: object) -> object:
    """Decimals become 4-place strings; strings and None pass through unchanged."""
    if isinstance(value, Decimal):
        return f"{value:.4f}"
    return value


def _competition_ranks(finals: Sequence[tuple[int, Decimal]]) -> dict[int, int]:
    """Row index → rank, where rank = 1 + the number of rows with a strictly higher final."""
    ordered = sorted(final for _, final in finals)
    ranks: dict[int, int] = {}
    for index, final in finals:
        higher = sum(1 for other in ordered if other > final)
        ranks[index] = higher + 1
    return ranks


def rank_rows(rows: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """Rank report rows by ``final`` (desc), ties sharing a rank and listed in agreement order.

    Each input row has ``agreement``, ``kind``, ``name_th``, ``composite``, ``penalty``,
    ``final`` (4-place strings, Decimals or None) and ``tier``. Each output row has the keys of
    :data:`REPORT_KEYS` first, in that order, then any other keys of the input row. Rows whose
    ``final`` is None come last, in agreement order, with ``rank`` and ``kind_rank`` None.
    """
    finals = [_decimal(row.get("final")) for row in rows]
    scored = [(i, final) for i, final in enumerate(finals) if final is not None]
    ranks = _competition_ranks(scored)
    kind_ranks: dict[int, int] = {}
    kinds = {str(rows[i].get("kind")) for i, _ in scored}
    for kind in kinds:
        kind_ranks.update(
            _competition_ranks([(i, f) for i, f in scored if str(rows[i].get("kind")) == kind])
        )

    def order(index: int) -> tuple[int, Decimal, str]:
        final = finals[index]
        agreement = str(rows[index].get("agreement"))
        if final is None:
            return (1, Decimal(0), agreement)
        return (0, -final, agreement)

    out: list[dict[str, object]] = []
    for index in sorted(range(len(rows)), key=order):
        row = rows[index]
        item: dict[str, object] = {
            "rank": ranks.get(index),
            "kind_rank": kind_ranks.get(index),
            "agreement": row.get("agreement"),
            "kind": row.get("kind"),
            "name_th": row.get("name_th"),
            "composite": _score_text(row.get("composite")),
            "penalty": _score_text(row.get("penalty")),
            "final": _score_text(row.get("final")),
            "tier": row.get("tier"),
        }
        for key, value in row.items():
            if key not in item:
                item[key] = _score_text(value)
        out.append(item)
    return out


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.4f}"
    return str(value)


def to_csv(rows: Sequence[Mapping[str, object]], *, bom: bool = False) -> str:
    """CSV of ranked rows: one header row of exactly :data:`REPORT_KEYS`, None as empty fields.

    Lines end with ``\\n``; ``bom=True`` prefixes a UTF-8 byte-order mark (for Excel).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_KEYS)
    for row in rows:
        writer.writerow([_cell_text(row.get(key)) for key in REPORT_KEYS])
    return ("\ufeff" if bom else "") + buffer.getvalue()


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return f"{value:.4f}"
    raise TypeError(f"not JSON serialisable: {value!r}")


def to_json(rows: Sequence[Mapping[str, object]]) -> str:
    """The ranked rows as one JSON array (Thai kept as is, Decimals as 4-place strings)."""
    return json.dumps(
        [dict(row) for row in rows], ensure_ascii=False, indent=2, default=_json_default
    )


def _xlsx_value(key: str, value: object) -> object:
    if value is None or value == "":
        return None
    if key in _SCORE_KEYS:
        return _decimal(value)
    if key in ("rank", "kind_rank") and isinstance(value, int | str):
        return int(value)
    return _cell_text(value)


def to_xlsx(rows: Sequence[Mapping[str, object]], path: Path) -> None:
    """Write the ranked rows to an Excel workbook at ``path``.

    The header row gives each column in Thai with the English beneath in the same cell
    (``"อันดับ\\nRank"``), wrapped; ranks are integers and scores numbers shown with 4 places.
    """
    from openpyxl import Workbook  # imported here: only xlsx output needs it
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "report"
    sheet.append([f"{th}\n{en}" for th, en in (HEADERS_TH_EN[key] for key in REPORT_KEYS)])
    for cell in sheet[1]:
        cell.alignment = Alignment(wrap_text=True, vertical="top", horizontal="center")
        cell.font = Font(bold=True)
    sheet.row_dimensions[1].height = 32
    for row in rows:
        sheet.append([_xlsx_value(key, row.get(key)) for key in REPORT_KEYS])
    for column, key in enumerate(REPORT_KEYS, start=1):
        letter = get_column_letter(column)
        sheet.column_dimensions[letter].width = _COLUMN_WIDTHS[column - 1]
        if key in _SCORE_KEYS:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
                cell.number_format = "0.0000"
    sheet.freeze_panes = "A2"
    workbook.save(path)


# --- SVG ---------------------------------------------------------------------------------

_FONT = "Sarabun, 'TH Sarabun New', Tahoma, 'Noto Sans Thai', sans-serif"
_BIN_WIDTH = Decimal("0.5")
_BINS = 10  # 0.0-0.5 … 4.5-5.0; below 0 joins the first bin, 5.0 the last


def _bin_of(final: Decimal) -> int:
    index = int(final // _BIN_WIDTH)
    return min(max(index, 0), _BINS - 1)


def _text(x: float, y: float, body: str, **attrs: str) -> str:
    extra = "".join(f" {name.replace('_', '-')}={quoteattr(v)}" for name, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(body)}</text>'


def score_chart_svg(rows: Sequence[Mapping[str, object]], late_days: Mapping[str, int]) -> str:
    """A self-contained SVG: a histogram of final scores and late business days per organisation.

    The histogram counts ``final`` in bins of 0.5 from 0 to 5 (unscored rows are noted, not
    drawn). The bar chart has one horizontal bar per organisation of ``late_days`` (agreement
    id → business days late), most days first, labelled with its id and Thai name when a row
    gives one. Labels are Thai with English.
    """
    names = {str(row.get("agreement")): str(row.get("name_th") or "") for row in rows}
    counts = [0] * _BINS
    unscored = 0
    for row in rows:
        final = _decimal(row.get("final"))
        if final is None:
            unscored += 1
        else:
            counts[_bin_of(final)] += 1

    width = 760
    parts: list[str] = []
    # Histogram panel.
    hx, hy, hw, hh = 70.0, 60.0, 640.0, 220.0
    top = max(max(counts), 1)
    parts.append(
        _text(
            width / 2,
            30,
            "การกระจายของคะแนนสุทธิ (Distribution of final scores)",
            text_anchor="middle",
            font_size="16",
            font_weight="bold",
        )
    )
    parts.append(
        f'<line x1="{hx:.1f}" y1="{hy + hh:.1f}" x2="{hx + hw:.1f}" y2="{hy + hh:.1f}" '
        'stroke="#333"/>'
    )
    parts.append(
        f'<line x1="{hx:.1f}" y1="{hy:.1f}" x2="{hx:.1f}" y2="{hy + hh:.1f}" stroke="#333"/>'
    )
    slot = hw / _BINS
    for i, count in enumerate(counts):
        low = _BIN_WIDTH * i
        height = hh * count / top
        x = hx + i * slot + 4
        y = hy + hh - height
        label = f"{low:.1f}–{low + _BIN_WIDTH:.1f}"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot - 8:.1f}" height="{height:.1f}" '
            f'fill="#2b6cb0"><title>{escape(label)}: {count}</title></rect>'
        )
        if count:
            parts.append(
                _text(x + (slot - 8) / 2, y - 4, str(count), text_anchor="middle", font_size="11")
            )
        parts.append(
            _text(x + (slot - 8) / 2, hy + hh + 16, label, text_anchor="middle", font_size="11")
        )
    parts.append(
        _text(
            hx + hw / 2,
            hy + hh + 38,
            "คะแนนสุทธิ (Final score)",
            text_anchor="middle",
            font_size="12",
        )
    )
    parts.append(
        _text(
            20,
            hy + hh / 2,
            "จำนวน (Count)",
            text_anchor="middle",
            font_size="12",
            transform=f"rotate(-90 20 {hy + hh / 2:.1f})",
        )
    )
    if unscored:
        parts.append(
            _text(
                hx + hw,
                hy - 8,
                f"ยังไม่มีคะแนน (unscored): {unscored}",
                text_anchor="end",
                font_size="11",
            )
        )

    # Late-days panel.
    by = hy + hh + 90
    parts.append(
        _text(
            width / 2,
            by,
            "จำนวนวันทำการที่ส่งล่าช้า (Late business days per organisation)",
            text_anchor="middle",
            font_size="16",
            font_weight="bold",
        )
    )
    entries = sorted(late_days.items(), key=lambda item: (-item[1], item[0]))
    bar_h, gap = 16.0, 4.0
    lx, lw = 250.0, 460.0
    most = max([days for _, days in entries] + [1])
    y = by + 20
    if not entries:
        parts.append(
            _text(width / 2, y + 12, "ไม่มีข้อมูล (no data)", text_anchor="middle", font_size="12")
        )
        y += bar_h + gap
    for agreement, days in entries:
        name = names.get(agreement, "")
        label = f"{agreement} {name}".strip()
        length = lw * max(days, 0) / most
        parts.append(_text(lx - 6, y + bar_h - 4, label, text_anchor="end", font_size="11"))
        parts.append(
            f'<rect x="{lx:.1f}" y="{y:.1f}" width="{length:.1f}" height="{bar_h:.1f}" '
            f'fill="#c53030"><title>{escape(label)}: {days}</title></rect>'
        )
        parts.append(_text(lx + length + 4, y + bar_h - 4, f"{days} วัน (days)", font_size="11"))
        y += bar_h + gap
    height = int(y + 20)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family={quoteattr(_FONT)}>'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + head
        + "\n<title>รายงานคะแนน (Score report)</title>\n"
        + f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>\n'
        + "\n".join(parts)
        + "\n</svg>\n"
    )
