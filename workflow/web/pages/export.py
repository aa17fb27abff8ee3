"""Downloads: a page's list as CSV (UTF-8 with BOM, for Excel) or XLSX.

The ranked report is written by :mod:`workflow.rules.ranking` itself (the ``report`` command's exact
CSV and workbook, :func:`report_response`); the other lists (matrix, outbox) use
:func:`table_response` with their own columns: the CSV header row holds the column keys (as the
``report`` CSV does), the workbook's header row Thai with the English beneath.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from fastapi.responses import Response

from workflow.rules.ranking import to_csv, to_xlsx

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = ("csv", "xlsx")
Column = tuple[str, str, str]  # key, Thai header, English header


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, int | float | str):
        return value
    return str(value)


def _attachment(body: bytes, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def table_csv(columns: Sequence[Column], rows: Sequence[Mapping[str, object]]) -> bytes:
    """The rows as CSV bytes: a BOM, one header row of the column keys, then the rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([key for key, _, _ in columns])
    for row in rows:
        writer.writerow([_cell(row.get(key)) for key, _, _ in columns])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def table_xlsx(
    columns: Sequence[Column], rows: Sequence[Mapping[str, object]], sheet_name: str
) -> bytes:
    """The rows as an XLSX workbook: a header row "Thai\\nEnglish", frozen, then the rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = sheet_name[:31]
    sheet.append([f"{th}\n{en}" for _, th, en in columns])
    for cell in sheet[1]:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_cell(row.get(key)) for key, _, _ in columns])
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def table_response(
    fmt: str, columns: Sequence[Column], rows: Sequence[Mapping[str, object]], name: str
) -> Response:
    """``rows`` as a CSV or XLSX download named ``name.csv`` / ``name.xlsx``."""
    if fmt == "xlsx":
        return _attachment(table_xlsx(columns, rows, name), XLSX_TYPE, f"{name}.xlsx")
    return _attachment(table_csv(columns, rows), CSV_TYPE, f"{name}.csv")


def report_response(fmt: str, rows: Sequence[Mapping[str, object]], name: str) -> Response:
    """The ranked report rows exactly as ``rubrong report --format csv|xlsx`` writes them."""
    if fmt == "xlsx":
        with tempfile.TemporaryDirectory(prefix="rubrong-report-") as folder:
            path = Path(folder) / "report.xlsx"
            to_xlsx(rows, path)
            body = path.read_bytes()
        return _attachment(body, XLSX_TYPE, f"{name}.xlsx")
    return _attachment(to_csv(rows, bom=True).encode("utf-8"), CSV_TYPE, f"{name}.csv")
