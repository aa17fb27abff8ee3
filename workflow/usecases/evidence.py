"""Evidence packs: one agreement's record, in files an auditor can check offline.

``rubrong export AGREEMENT --evidence DIR`` writes:

- ``chain.json``: every history entry from ``seq`` 1 to the agreement's last entry (or to the
  entry a given checkpoint signs, if later), exactly as ``history --json`` prints them, so the
  hash chain can be recomputed from the file alone;
- ``history.json`` / ``history.csv``: the agreement's own entries (a filtered view of the chain,
  hashes included; the CSV is UTF-8 with a BOM, ``data`` as compact JSON);
- ``agreement.json`` (its ``status`` row and ``milestones``), ``score.json`` (``score --json``),
  ``outbox.json`` (its notifications, every status);
- ``mail/NNN-KIND-MILESTONE.eml``: each notification that was *sent*, as the very bytes handed
  to the mail server (kept in the outbox row by the dispatcher; CRLF line ends). A row sent by
  a version that did not keep them is listed as "not kept" and gets no file: nothing is
  re-rendered;
- ``ledger.json`` / ``ledger.csv``: every sent notification (``key, kind, to, subject, sent_at,
  message_id, sha256, file``), the ``sha256`` being the one recorded when it was sent;
- ``checkpoint.json`` + ``checkpoint.pub`` when ``--checkpoint``/``--public-key`` are given;
- ``verify_pack.py``: a checker that needs nothing but ``python3`` (its source is
  ``workflow/usecases/evidence_verifier.py``);
- ``manifest.json``: the SHA-256 of every file above, the chain's entry count and head hash, and
  whether the chain verified at export; ``SHA256SUMS``: the same hashes plus the manifest's.

Offline checks (the first two also recompute the chain, the mail ledger and the checkpoint)::

    python3 -I -S DIR/verify_pack.py
    python -m workflow.usecases.evidence verify DIR
    (cd DIR && sha256sum -c SHA256SUMS)

The head in ``manifest.json`` is the anchor: compare it with ``rubrong verify --json``, a head
published elsewhere, or a signed checkpoint, to prove the pack's chain is the system's.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from workflow.rules.clock import Clock
from workflow.rules.errors import BadInput, IntegrityFailure
from workflow.rules.timeutil import format_instant
from workflow.store.chain import GENESIS, Marks, verify_entries
from workflow.store.database import Database
from workflow.store.history import HISTORY, printed
from workflow.store.outbox import OUTBOX
from workflow.store.repository import get_agreement, get_cycle
from workflow.store.views import agreement_status, history_rows, milestone_rows, outbox_rows
from workflow.usecases.checkpoint import (
    Checkpoint,
    checkpoint_problem,
    load_public_key,
    read_checkpoint,
)
from workflow.usecases.evidence_verifier import check_pack, history_csv, ledger_csv
from workflow.usecases.score import agreement_score

FORMAT = "rubrong-evidence/2"
VERIFIER = Path(__file__).resolve().with_name("evidence_verifier.py")
NOT_KEPT = "not kept: sent by a version that did not keep the bytes it sent"
README = """\
Evidence pack for agreement {agreement} (cycle {cycle}), exported {exported_at}.

Check it offline with nothing but Python (no rubrong, no packages):
    python3 -I -S verify_pack.py              (every check below; exit 0 when all pass)
    sha256sum -c SHA256SUMS                   (hashes of every file only)

chain.json holds history entries 1..{entries}; recompute each hash as
sha256(prev_hash + "\\n" + json.dumps(entry without "hash", sort_keys=True,
separators=(",", ":"), ensure_ascii=False)); the last one must be {head}.
history.json / history.csv are this agreement's entries of that chain.
mail/ holds each notification exactly as it was handed to the mail server; ledger.json /
ledger.csv list every sent one with the SHA-256 recorded when it was sent ({not_kept} sent
before rubrong kept those bytes: listed as "not kept", no file).
{checkpoint}"""
CHECKPOINT_README = """\
checkpoint.json is a signed statement that entry {seq} of the chain had hash {head} at
{recorded_at}; verify_pack.py checks its Ed25519 signature with checkpoint.pub.
"""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _chain_prefix(conn: Connection, last_seq: int) -> list[dict[str, Any]]:
    query = select(HISTORY).where(HISTORY.c.seq <= last_seq).order_by(HISTORY.c.seq)
    return [printed(row._mapping) for row in conn.execute(query)]


def _mails(
    conn: Connection, cycle_id: str, org_id: str
) -> tuple[dict[str, bytes], list[dict[str, Any]], list[str]]:
    """The stored bytes of each sent notification, the ledger, and problems found."""
    query = (
        select(OUTBOX)
        .where(
            OUTBOX.c.cycle_id == cycle_id,
            OUTBOX.c.agreement == org_id,
            OUTBOX.c.status == "sent",
        )
        .order_by(OUTBOX.c.sent_at, OUTBOX.c.key)
    )
    files: dict[str, bytes] = {}
    ledger: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, row in enumerate(conn.execute(query), start=1):
        data: bytes | None = row.sent_bytes
        name = f"mail/{index:03d}-{row.kind}-{row.milestone or 'none'}.eml"
        entry = {
            "key": row.key,
            "kind": row.kind,
            "to": row.recipient,
            "subject": row.subject,
            "sent_at": format_instant(row.sent_at) if row.sent_at is not None else None,
            "message_id": row.message_id,
            "sha256": row.sent_sha256,
            "file": None if data is None else name,
            "kept": data is not None,
        }
        if data is None:
            entry["note"] = NOT_KEPT
        else:
            files[name] = bytes(data)
            if _sha256(files[name]) != row.sent_sha256:
                problems.append(f"outbox row {row.key}: stored bytes do not match their SHA-256")
        ledger.append(entry)
    return files, ledger, problems


def _checkpoint(
    checkpoint: Path | None, public_key: Path | None
) -> tuple[Checkpoint, bytes, bytes, Any] | None:
    """The given checkpoint and key (read and checked for form: exit 2), or None."""
    if checkpoint is None and public_key is None:
        return None
    if checkpoint is None or public_key is None:
        raise BadInput("--checkpoint and --public-key go together")
    signed, key = read_checkpoint(checkpoint), load_public_key(public_key)
    return signed, checkpoint.read_bytes(), public_key.read_bytes(), key


def export_evidence(
    db: Database,
    clock: Clock,
    agreement: str,
    directory: Path,
    cycle_id: str | None = None,
    *,
    checkpoint: Path | None = None,
    public_key: Path | None = None,
) -> dict[str, Any]:
    """Write the pack for ``agreement`` into ``directory`` (new or empty); return the manifest.

    The pack is written even when the stored chain, a stored message or the given checkpoint
    does not verify (that is evidence too); the manifest then says so and
    :class:`IntegrityFailure` (exit 6) is raised afterwards.
    """
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BadInput(f"{directory} exists and is not an empty directory")
    given = _checkpoint(checkpoint, public_key)
    with db.read() as conn:
        cycle = get_cycle(conn, cycle_id)
        found = get_agreement(conn, cycle.id, agreement)
        entries = history_rows(conn, cycle.id, found.org_id, None)
        last = max(entries[-1]["seq"] if entries else 0, given[0].seq if given else 0)
        chain = _chain_prefix(conn, last)
        mails, ledger, problems = _mails(conn, cycle.id, found.org_id)
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
            "ledger.json": _json(ledger),
            "ledger.csv": ledger_csv(ledger),
            "verify_pack.py": VERIFIER.read_bytes(),
        }
        files.update(mails)
        documents, missing = _documents(db, entries)
        files.update(documents)
        problems.extend(missing)
    marks = Marks(seq=given[0].seq if given else None)
    verification = verify_entries(chain, marks=marks)
    head = chain[-1]["hash"] if chain else GENESIS
    exported_at = format_instant(clock.now())
    checkpoint_note = ""
    signed: dict[str, Any] | None = None
    if given is not None:
        point, point_bytes, key_bytes, key = given
        files["checkpoint.json"], files["checkpoint.pub"] = point_bytes, key_bytes
        problem = checkpoint_problem(point, key, verification, marks)
        signed = {**point.as_json(), "holds": problem is None, "problem": problem}
        if problem is not None and verification.ok:
            problems.append(f"checkpoint does not hold: {problem}")
        checkpoint_note = CHECKPOINT_README.format(
            seq=point.seq, head=point.head, recorded_at=point.recorded_at
        )
    not_kept = [row["key"] for row in ledger if not row["kept"]]
    files["README.txt"] = README.format(
        agreement=found.org_id,
        cycle=cycle.id,
        exported_at=exported_at,
        entries=len(chain),
        head=head,
        not_kept=len(not_kept),
        checkpoint=checkpoint_note,
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
        "mail": {
            "ledger": "ledger.json",
            "sent": len(ledger),
            "kept": len(ledger) - len(not_kept),
            "not_kept": [{"key": key, "note": NOT_KEPT} for key in not_kept],
        },
        "checkpoint": signed,
        "verifier": "verify_pack.py",
        "files": {name: _sha256(data) for name, data in sorted(files.items())},
    }
    files["manifest.json"] = _json(manifest)
    sums = "".join(f"{_sha256(data)}  {name}\n" for name, data in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode("utf-8")
    for name, data in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if not verification.ok:
        problems.insert(
            0, f"history chain broken at seq {verification.first_bad}: {verification.reason}"
        )
    if problems:
        raise IntegrityFailure(f"{problems[0]} (the pack in {directory} records it)")
    return manifest


def _documents(db: Database, entries: list[dict[str, Any]]) -> tuple[dict[str, bytes], list[str]]:
    """The documents the agreement's history entries cite (``data.document.sha256``), as
    ``documents/<sha256>`` files; the names people gave them stay in the history entries."""
    from workflow.store.documents import default_store

    store = default_store(db.url)
    files: dict[str, bytes] = {}
    missing: list[str] = []
    for entry in entries:
        document = entry["data"].get("document") if isinstance(entry["data"], dict) else None
        sha = document.get("sha256") if isinstance(document, dict) else None
        if not isinstance(sha, str) or f"documents/{sha}" in files:
            continue
        try:
            files[f"documents/{sha}"] = store.get(sha)
        except KeyError:
            missing.append(f"document {sha} cited by seq {entry['seq']} is not in the store")
    return files, missing


def verify_pack(directory: Path) -> list[str]:
    """Every problem with the pack in ``directory`` (an empty list means it checks out)."""
    return check_pack(directory)[1]


def main(argv: list[str]) -> int:
    """``python -m workflow.usecases.evidence verify DIR``: exit 0 when the pack checks out, else
    6."""
    if len(argv) != 2 or argv[0] != "verify":
        sys.stderr.write("usage: python -m workflow.usecases.evidence verify DIR\n")
        return 2
    directory = Path(argv[1])
    checked, problems = check_pack(directory)
    for line in checked:
        sys.stdout.write(f"ok    {line}\n")
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
