"""Files for the document tests, made in memory: a minimal valid PDF (``pdf_bytes``), DOCX
(``docx_bytes``, its main part's content type ``WORD_MAIN``) and XLSX (``xlsx_bytes``); a real
executable to pass off as a document (``ELF``, ``/bin/true``) and a path trick (``PASSWD``).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl

WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"


def pdf_bytes(text: str = "e-SAR Card 6 months") -> bytes:
    """A minimal valid PDF: one page, a cross-reference table with correct offsets."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
    ]
    stream = f"BT /F1 12 Tf 72 770 Td ({text}) Tj ET".encode()
    objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def docx_bytes(extra: dict[str, bytes] | None = None, main: str = WORD_MAIN) -> bytes:
    """A minimal DOCX package (content types, relationships, the main document part)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/word/document.xml" ContentType="{main}"/></Types>',
        )
        archive.writestr("word/document.xml", "<w:document/>")
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    """An XLSX written by openpyxl."""
    book = openpyxl.Workbook()
    book.active.append(["KPI", "result"])  # type: ignore[union-attr]
    book.active.append(["1.1", 72.5])  # type: ignore[union-attr]
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


ELF = Path("/bin/true").read_bytes()
PASSWD = {"path": "/etc/passwd"}
