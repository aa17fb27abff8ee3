"""Evidence packs: one agreement's record, in files an auditor can check offline.

``rubrong export AGREEMENT --evidence DIR`` writes:

- ``chain.json``: every history entry from ``seq`` 1 to the agreement's last entry, exactly as
  ``history --json`` prints them, so the hash chain can be recomputed from the file alone;
- ``history.json`` / ``history.csv``: the agreement's own entries (a filtered view of the chain,
  hashes included; the CSV is UTF-8 with a BOM, ``data`` as compact JSON);
- ``agreement.json`` (its ``status`` row and ``milestones``), ``score.json`` (``score --json``),
  ``outbox.json`` (its notifications, every status);
- ``mail/NNN-KIND-MILESTONE.eml``: each notification that was *sent*, re-rendered from its
  outbox row by the dispatcher's own code with the row's ``sent_at`` as the clock, so
  ``Message-ID``, ``Date`` and body are those that were sent (byte for byte while the template
  version in ``X-Rubrong-Template`` is the current one), with the Maildir's ``\\n`` line ends;
- ``manifest.json``: the SHA-256 of every file above, the chain's entry count and head hash, and
  whether the chain verified at export; ``SHA256SUMS``: the same hashes plus the manifest's.

Offline checks (either is enough for file integrity; the first also recomputes the chain)::

    python -m workflow.evidence verify DIR
    (cd DIR && sha256sum -c SHA256SUMS)

The head in ``manifest.json`` is the anchor: compare it with ``rubrong verify --json`` (or a
head published elsewhere) to prove the pack's chain is the system's.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from notifications.dispatch import _outgoing
from notifications.message import mail_bytes
from notifications.outbox import OUTBOX
from workflow.clock import Clock
from workflow.errors import BadInput, IntegrityFailure
from workflow.history import GENESIS, HISTORY, printed, verify_entries
from workflow.repository import get_agreement, get_cycle
from workflow.scores import agreement_score
from workflow.store import Database
from workflow.timeutil import format_instant
from workflow.views import agreement_status, history_rows, milestone_rows, outbox_rows

FORMAT = "rubrong-evidence/1"
CSV_COLUMNS = (
    "seq", "cycle", "agreement", "kind", "event", "from", "to", "actor", "at", "recorded_at",
    "data", "prev_hash", "hash",
)  # fmt: skip
README = """\
Evidence pack for agreement {agreement} (cycle {cycle}), exported {exported_at}.

Check it offline, either way:
    python -m workflow.evidence verify .      (hashes of every file + the history chain)
    sha256sum -c SHA256SUMS                   (hashes of every file)

chain.json holds history entries 1..{entries}; recompute each hash as
sha256(prev_hash + "\\n" + json.dumps(entry without "hash", sort_keys=True,
separators=(",", ":"), ensure_ascii=False)); the last one must be {head}.
history.json / history.csv are this agreement's entries of that chain; mail/ holds the
notifications as sent (re-rendered from the outbox with their sent time).
"""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def history_csv(entries: list[dict[str, Any]]) -> bytes:
    """Entries as CSV (UTF-8 with BOM), ``data`` as compact sorted JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        row = {**entry, "data": json.dumps(entry["data"], sort_keys=True, ensure_ascii=False)}
        writer.writerow(["" if row[key] is None else row[key] for key in CSV_COLUMNS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _chain_prefix(conn: Connection, last_seq: int) -> list[dict[str, Any]]:
    query = select(HISTORY).where(HISTORY.c.seq <= last_seq).order_by(HISTORY.c.seq)
    return [printed(row._mapping) for row in conn.execute(query)]


def _mails(conn: Connection, cycle_id: str, org_id: str) -> list[tuple[str, bytes]]:
    cycle = get_cycle(conn, cycle_id)
    query = (
        select(OUTBOX)
        .where(
            OUTBOX.c.cycle_id == cycle_id,
            OUTBOX.c.agreement == org_id,
            OUTBOX.c.status == "sent",
        )
        .order_by(OUTBOX.c.sent_at, OUTBOX.c.key)
    )
    out: list[tuple[str, bytes]] = []
    for index, row in enumerate(conn.execute(query), start=1):
        values = dict(row._mapping)
        mail = _outgoing(conn, cycle, values, int(values["sent_at"]), None)
        name = f"mail/{index:03d}-{values['kind']}-{values['milestone'] or 'none'}.eml"
        out.append((name, mail_bytes(mail, linesep="\n")))
    return out


def export_evidence(
    db: Database, clock: Clock, agreement: str, directory: Path, cycle_id: str | None = None
) -> dict[str, Any]:
    """Write the pack for ``agreement`` into ``directory`` (new or empty); return the manifest.

    The pack is written even when the stored chain does not verify (that is evidence too);
    the manifest then says so and :class:`IntegrityFailure` (exit 6) is raised afterwards.
    """
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BadInput(f"{directory} exists and is not an empty directory")
    with db.read() as conn:
        cycle = get_cycle(conn, cycle_id)
        found = get_agreement(conn, cycle.id, agreement)
        entries = history_rows(conn, cycle.id, found.org_id, None)
        chain = _chain_prefix(conn, entries[-1]["seq"] if entries else 0)
        files: dict[str, bytes] = {
            "chain.json": _json(chain),
            "history.json": _json(entries),
            "history.csv": history_csv(entries),
            "agreement.json": _json(
                {
                    "status": agreement_status(conn, found),
                    "milestones": milestone_rows(conn, cycle.id, [found.org_id]),
                }
            ),
            "score.json": _json(agreement_score(conn, cycle, found)),
            "outbox.json": _json(
                [row for row in outbox_rows(conn, cycle.id) if row["agreement"] == found.org_id]
            ),
        }
        files.update(_mails(conn, cycle.id, found.org_id))
    verification = verify_entries(chain)
    head = chain[-1]["hash"] if chain else GENESIS
    exported_at = format_instant(clock.now())
    files["README.txt"] = README.format(
        agreement=found.org_id,
        cycle=cycle.id,
        exported_at=exported_at,
        entries=len(chain),
        head=head,
    ).encode("utf-8")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "agreement": found.org_id,
        "cycle": cycle.id,
        "exported_at": exported_at,
        "chain": {
            "file": "chain.json",
            "entries": len(chain),
            "head": head,
            "verified": verification.ok,
            "first_bad_seq": verification.first_bad,
            "reason": verification.reason,
        },
        "history": {"file": "history.json", "seqs": [entry["seq"] for entry in entries]},
        "files": {name: _sha256(data) for name, data in sorted(files.items())},
    }
    files["manifest.json"] = _json(manifest)
    sums = "".join(f"{_sha256(data)}  {name}\n" for name, data in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode("ascii")
    for name, data in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if not verification.ok:
        raise IntegrityFailure(
            f"history chain broken at seq {verification.first_bad}: {verification.reason} "
            f"(the pack in {directory} records it)"
        )
    return manifest


def _read_json(path: Path, problems: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name}: cannot read ({exc})")
        return None


def _entry_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(entry, dict) for entry in value)


def verify_pack(directory: Path) -> list[str]:
    """Every problem with the pack in ``directory`` (an empty list means it checks out)."""
    problems: list[str] = []
    manifest = _read_json(directory / "manifest.json", problems)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return [*problems, "manifest.json is missing or not a rubrong evidence manifest"]
    listed: dict[str, str] = manifest.get("files", {})
    for name, expected in sorted(listed.items()):
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _sha256(path.read_bytes()) != expected:
            problems.append(f"{name}: SHA-256 does not match manifest.json")
    present = {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}
    for extra in sorted(present - set(listed) - {"manifest.json", "SHA256SUMS"}):
        problems.append(f"{extra}: not listed in manifest.json")
    chain = _read_json(directory / "chain.json", problems) or []
    history = _read_json(directory / "history.json", problems) or []
    if not _entry_list(chain) or not _entry_list(history):
        return [*problems, "chain.json and history.json must be arrays of history entries"]
    try:
        result = verify_entries(chain)
    except (KeyError, TypeError) as exc:
        return [*problems, f"chain.json: an entry lacks a key or has a bad value ({exc})"]
    if not result.ok:
        problems.append(f"history chain broken at seq {result.first_bad}: {result.reason}")
    elif result.head != manifest["chain"]["head"] or result.entries != manifest["chain"]["entries"]:
        problems.append(
            f"chain.json ends at {result.head} ({result.entries} entries), manifest.json says "
            f"{manifest['chain']['head']} ({manifest['chain']['entries']})"
        )
    by_seq = {entry.get("seq"): entry for entry in chain if isinstance(entry, dict)}
    own = [e["seq"] for e in chain if e.get("agreement") == manifest["agreement"]]
    own = [seq for seq in own if by_seq[seq].get("cycle") == manifest["cycle"]]
    for entry in history:
        if by_seq.get(entry.get("seq")) != entry:
            problems.append(f"history.json: entry seq {entry.get('seq')} differs from chain.json")
    if [entry.get("seq") for entry in history] != own:
        problems.append("history.json is not exactly the agreement's entries of chain.json")
    csv_path = directory / "history.csv"
    if csv_path.is_file() and csv_path.read_bytes() != history_csv(history):
        problems.append("history.csv does not match history.json")
    return problems


def main(argv: list[str]) -> int:
    """``python -m workflow.evidence verify DIR``: exit 0 when the pack checks out, else 6."""
    if len(argv) != 2 or argv[0] != "verify":
        sys.stderr.write("usage: python -m workflow.evidence verify DIR\n")
        return 2
    directory = Path(argv[1])
    problems = verify_pack(directory)
    for problem in problems:
        sys.stdout.write(f"FAIL {problem}\n")
    if problems:
        sys.stderr.write(f"evidence: {directory}: {len(problems)} problem(s)\n")
        return 6
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    sys.stdout.write(
        f"ok: {manifest['agreement']} ({manifest['cycle']}), {len(manifest['files'])} files, "
        f"chain of {manifest['chain']['entries']} entries ending at {manifest['chain']['head']}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
