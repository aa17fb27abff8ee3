#!/usr/bin/env python3
"""verify_pack.py: check a rubrong evidence pack with Python's standard library alone.

    python3 -I -S verify_pack.py [DIR]      (DIR defaults to the directory of this script)

What it checks, and prints as it goes:

1. ``SHA256SUMS`` and ``manifest.json``: every file has the SHA-256 both list; none is
   missing or added.
2. ``chain.json``: the history hash chain, recomputed entry by entry: ``hash`` = SHA-256 of
   ``prev_hash + "\\n" + json.dumps(entry without "hash", sort_keys=True,
   separators=(",", ":"), ensure_ascii=False)``, the first ``prev_hash`` 64 zeros; it must end
   at the head ``manifest.json`` names.
3. ``history.json`` / ``history.csv``: exactly the agreement's entries of that chain.
4. ``ledger.json`` / ``ledger.csv`` and ``mail/*.eml``: each message file is the one the ledger
   lists (its SHA-256 and Message-ID); a message whose bytes were not kept is listed as such.
5. ``checkpoint.json`` + ``checkpoint.pub``, when the pack holds them: the Ed25519 signature
   (RFC 8032, verified below in pure Python) over ``rubrong-checkpoint/1\\nseq=<seq>\\n
   head=<head>\\nrecorded_at=<recorded_at>\\n``, and that entry ``seq`` of the chain has that
   hash.

Exit 0 when everything checks out, 1 otherwise. In the rubrong source tree this file is
``workflow/usecases/evidence_verifier.py``; ``python -m workflow.usecases.evidence verify DIR``
runs the same code.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import sys
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

FORMATS = ("rubrong-evidence/1", "rubrong-evidence/2")
GENESIS = "0" * 64
CHECKPOINT_FORMAT = "rubrong-checkpoint/1"
HISTORY_COLUMNS = (
    "seq", "cycle", "agreement", "kind", "event", "from", "to", "actor", "at", "recorded_at",
    "data", "prev_hash", "hash",
)  # fmt: skip
LEDGER_COLUMNS = ("key", "kind", "to", "subject", "sent_at", "message_id", "sha256", "file")

# --- Ed25519 verification, RFC 8032 section 5.1.7 (points in extended coordinates) -----------
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
Point = tuple[int, int, int, int]


def _add(a: Point, b: Point) -> Point:
    """Point addition (RFC 8032 5.1.4); complete, so it also doubles."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    p, q = (y1 - x1) * (y2 - x2) % _P, (y1 + x1) * (y2 + x2) % _P
    c, d = 2 * t1 * t2 * _D % _P, 2 * z1 * z2 % _P
    e, f, g, h = q - p, d - c, d + c, q + p
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(scalar: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point, scalar = _add(point, point), scalar >> 1
    return result


def _same(a: Point, b: Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if x & 1 != sign else x


def _decode_point(data: bytes) -> Point | None:
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_BASE: Point = (_recover_x(_GY, 0) or 0, _GY, 1, (_recover_x(_GY, 0) or 0) * _GY % _P)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a, r = _decode_point(public_key), _decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    digest = hashlib.sha512(signature[:32] + public_key + message).digest()
    k = int.from_bytes(digest, "little") % _L
    return _same(_multiply(s, _BASE), _add(r, _multiply(k, a)))


def pem_public_key(text: str) -> bytes | None:
    """The 32 key bytes of an Ed25519 ``PUBLIC KEY`` PEM (SubjectPublicKeyInfo), or None."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 3 or lines[0] != "-----BEGIN PUBLIC KEY-----":
        return None
    if lines[-1] != "-----END PUBLIC KEY-----":
        return None
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        return None
    prefix = bytes.fromhex("302a300506032b6570032100")  # SEQUENCE { id-Ed25519 }, BIT STRING
    return der[12:] if len(der) == 44 and der.startswith(prefix) else None


# --- files -------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    """Lower-case hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(key) is None else row[key] for key in columns])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def history_csv(entries: list[dict[str, Any]]) -> bytes:
    """History entries as CSV (UTF-8 with BOM), ``data`` as compact sorted JSON."""
    rows = [
        {**entry, "data": json.dumps(entry["data"], sort_keys=True, ensure_ascii=False)}
        for entry in entries
    ]
    return _csv(HISTORY_COLUMNS, rows)


def ledger_csv(ledger: list[dict[str, Any]]) -> bytes:
    """The mail ledger as CSV (UTF-8 with BOM)."""
    return _csv(LEDGER_COLUMNS, ledger)


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    """CONTRACT.md's hash of one printed history entry (``hash`` excluded)."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return sha256(f"{prev_hash}\n{payload}".encode())


def chain_problem(chain: list[dict[str, Any]]) -> str | None:
    """Why the chain does not recompute (None when it does)."""
    prev = GENESIS
    for expected, entry in enumerate(chain, start=1):
        seq = entry["seq"]
        broken = f"history chain broken at seq {expected}: entry {expected}"
        if seq != expected:
            return f"{broken} is missing (next is {seq})"
        if entry["prev_hash"] != prev:
            return f"{broken}: prev_hash does not match"
        if entry_hash(prev, entry) != entry["hash"]:
            return f"{broken}: content was altered"
        prev = entry["hash"]
    return None


class Pack:
    """One pack being checked: what was checked (``checked``) and what failed (``problems``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.checked: list[str] = []
        self.problems: list[str] = []

    def read_json(self, name: str) -> Any:
        try:
            return json.loads((self.directory / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.problems.append(f"{name}: cannot read ({exc})")
            return None

    def check(self) -> None:
        """Run every check."""
        manifest = self.read_json("manifest.json")
        if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS:
            self.problems.append("manifest.json is missing or not a rubrong evidence manifest")
            return
        listed: dict[str, str] = manifest.get("files", {})
        self.check_files(listed)
        chain = self.read_json("chain.json") or []
        history = self.read_json("history.json") or []
        if not _entries(chain) or not _entries(history):
            self.problems.append("chain.json and history.json must be arrays of history entries")
            return
        if self.check_chain(manifest, chain):
            self.check_history(manifest, chain, history)
        if manifest["format"] != FORMATS[0]:
            self.check_mail(listed)
        self.check_documents(listed, history)
        self.check_checkpoint(chain)

    def check_documents(self, listed: dict[str, str], history: list[dict[str, Any]]) -> None:
        """Each documents/<sha256> file is the document a history entry cites, by its hash."""
        cited = set()
        for entry in history:
            data = entry.get("data")
            document = data.get("document") if isinstance(data, dict) else None
            if isinstance(document, dict) and isinstance(document.get("sha256"), str):
                cited.add(document["sha256"])
        shipped = {name[len("documents/") :] for name in listed if name.startswith("documents/")}
        before = len(self.problems)
        for sha in sorted(shipped):
            path = self.directory / "documents" / sha
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha:
                self.problems.append(f"documents/{sha}: content does not match its SHA-256")
            if sha not in cited:
                self.problems.append(f"documents/{sha}: no history entry cites it")
        for sha in sorted(cited - shipped):
            self.problems.append(f"document {sha} cited by the history is not in the pack")
        if len(self.problems) == before and cited:
            self.checked.append(f"documents: {len(cited)} cited by the history, each by SHA-256")

    def check_files(self, listed: dict[str, str]) -> None:
        """Every file against ``manifest.json`` and ``SHA256SUMS``."""
        before = len(self.problems)
        for name, expected in sorted(listed.items()):
            path = self.directory / name
            if not path.is_file():
                self.problems.append(f"{name}: missing")
            elif sha256(path.read_bytes()) != expected:
                self.problems.append(f"{name}: SHA-256 does not match manifest.json")
        present = {p.relative_to(self.directory).as_posix() for p in self.directory.rglob("*")}
        present = {name for name in present if (self.directory / name).is_file()}
        for extra in sorted(present - set(listed) - {"manifest.json", "SHA256SUMS"}):
            self.problems.append(f"{extra}: not listed in manifest.json")
        sums_path = self.directory / "SHA256SUMS"
        if sums_path.is_file():
            sums: dict[str, str] = {}
            for line in sums_path.read_text(encoding="utf-8", errors="replace").splitlines():
                digest, _, name = line.partition("  ")
                sums[name] = digest
            if set(sums) != set(listed) | {"manifest.json"}:
                self.problems.append("SHA256SUMS does not list the same files as manifest.json")
            for name, digest in sorted(sums.items()):
                path = self.directory / name
                if path.is_file() and sha256(path.read_bytes()) != digest:
                    self.problems.append(f"{name}: SHA-256 does not match SHA256SUMS")
        else:
            self.problems.append("SHA256SUMS: missing")
        if len(self.problems) == before:
            self.checked.append(f"SHA256SUMS and manifest.json: {len(listed) + 1} files match")

    def check_chain(self, manifest: dict[str, Any], chain: list[dict[str, Any]]) -> bool:
        """The chain recomputes and ends where the manifest says."""
        try:
            problem = chain_problem(chain)
        except (KeyError, TypeError) as exc:
            self.problems.append(f"chain.json: an entry lacks a key or has a bad value ({exc})")
            return False
        head = chain[-1]["hash"] if chain else GENESIS
        said = manifest.get("chain", {})
        if problem is not None:
            self.problems.append(problem)
        elif head != said.get("head") or len(chain) != said.get("entries"):
            self.problems.append(
                f"chain.json ends at {head} ({len(chain)} entries), manifest.json says "
                f"{said.get('head')} ({said.get('entries')})"
            )
        else:
            self.checked.append(f"history chain: {len(chain)} entries recomputed, head {head}")
        return True

    def check_history(
        self, manifest: dict[str, Any], chain: list[dict[str, Any]], history: list[dict[str, Any]]
    ) -> None:
        """history.json and history.csv are the agreement's entries of the chain."""
        before = len(self.problems)
        by_seq = {entry.get("seq"): entry for entry in chain}
        own = [
            entry["seq"]
            for entry in chain
            if entry.get("agreement") == manifest["agreement"]
            and entry.get("cycle") == manifest["cycle"]
        ]
        for entry in history:
            if by_seq.get(entry.get("seq")) != entry:
                self.problems.append(
                    f"history.json: entry seq {entry.get('seq')} differs from chain.json"
                )
        if [entry.get("seq") for entry in history] != own:
            self.problems.append(
                "history.json is not exactly the agreement's entries of chain.json"
            )
        csv_path = self.directory / "history.csv"
        if csv_path.is_file() and csv_path.read_bytes() != history_csv(history):
            self.problems.append("history.csv does not match history.json")
        if len(self.problems) == before:
            self.checked.append(f"history.json, history.csv: the agreement's {len(own)} entries")

    def check_mail(self, listed: dict[str, str]) -> None:
        """Each .eml is the message the ledger lists, byte for byte (by SHA-256)."""
        before = len(self.problems)
        ledger = self.read_json("ledger.json")
        if not _entries(ledger):
            self.problems.append("ledger.json must be an array of sent messages")
            return
        csv_path = self.directory / "ledger.csv"
        if not csv_path.is_file() or csv_path.read_bytes() != ledger_csv(ledger):
            self.problems.append("ledger.csv does not match ledger.json")
        files = {str(row.get("file")) for row in ledger if row.get("file")}
        for name in sorted(n for n in listed if n.startswith("mail/") and n not in files):
            self.problems.append(f"{name}: not in ledger.json")
        kept = 0
        for row in ledger:
            name = row.get("file")
            if not name:
                continue
            path = self.directory / str(name)
            if not path.is_file():
                self.problems.append(f"{name}: listed in ledger.json but missing")
                continue
            data = path.read_bytes()
            if sha256(data) != row.get("sha256"):
                self.problems.append(f"{name}: SHA-256 does not match ledger.json (not as sent)")
                continue
            message_id = BytesHeaderParser().parsebytes(data).get("Message-ID")
            if message_id != row.get("message_id"):
                self.problems.append(f"{name}: Message-ID does not match ledger.json")
                continue
            kept += 1
        if len(self.problems) == before:
            missing = len(ledger) - kept
            note = f" ({missing} sent before bytes were kept: not kept)" if missing else ""
            self.checked.append(f"mail: {kept} .eml files are the bytes sent{note}")

    def check_checkpoint(self, chain: list[dict[str, Any]]) -> None:
        """A signed checkpoint, when the pack holds one: signature and chain position."""
        has = [(self.directory / n).is_file() for n in ("checkpoint.json", "checkpoint.pub")]
        if not any(has):
            return
        if not all(has):
            self.problems.append("checkpoint.json and checkpoint.pub must come together")
            return
        point = self.read_json("checkpoint.json")
        public = pem_public_key((self.directory / "checkpoint.pub").read_text(errors="replace"))
        if not isinstance(point, dict) or public is None:
            self.problems.append("checkpoint.json or checkpoint.pub is malformed")
            return
        seq, head, when = point.get("seq"), point.get("head"), point.get("recorded_at")
        text = f"{CHECKPOINT_FORMAT}\nseq={seq}\nhead={head}\nrecorded_at={when}\n"
        try:
            signature = bytes.fromhex(str(point.get("signature")))
        except ValueError:
            signature = b""
        if not ed25519_verify(public, text.encode("utf-8"), signature):
            self.problems.append("checkpoint.json: the Ed25519 signature does not hold")
        elif not isinstance(seq, int) or not 1 <= seq <= len(chain):
            self.problems.append(f"checkpoint.json: chain.json has no entry {seq}")
        elif chain[seq - 1].get("hash") != head:
            self.problems.append(
                f"checkpoint.json: entry {seq} of chain.json is not the one signed"
            )
        else:
            self.checked.append(f"checkpoint: Ed25519 signature holds; entry {seq} has hash {head}")


def _entries(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(entry, dict) for entry in value)


def check_pack(directory: Path) -> tuple[list[str], list[str]]:
    """``(checked, problems)`` for the pack in ``directory``; no problems means it checks out."""
    pack = Pack(directory)
    pack.check()
    return pack.checked, pack.problems


def main(argv: list[str]) -> int:
    """Check the pack in ``argv[0]`` (default: this script's directory); exit 0 or 1."""
    directory = Path(argv[0]) if argv else Path(__file__).resolve().parent
    checked, problems = check_pack(directory)
    for line in checked:
        sys.stdout.write(f"ok    {line}\n")
    for problem in problems:
        sys.stdout.write(f"FAIL  {problem}\n")
    verdict = "FAILED" if problems else "OK"
    sys.stdout.write(f"{verdict}: {directory} ({len(problems)} problem(s))\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
