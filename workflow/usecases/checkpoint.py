"""Signed checkpoints: an Ed25519 signature over the history chain's head at one moment.

A checkpoint is the JSON object ``{format, algorithm, seq, head, recorded_at, signature}``:
``seq`` and ``head`` are the last entry's number and hash, ``recorded_at`` the time it was
made (ISO 8601, ``+07:00``), ``signature`` the lower-case hex of the 64-byte Ed25519 signature
of :func:`signed_bytes`, the UTF-8 bytes of::

    rubrong-checkpoint/1\\nseq=<seq>\\nhead=<head>\\nrecorded_at=<recorded_at>\\n

(``seq`` in decimal, no padding). Whoever holds the public key can later prove that the chain
still holds, unchanged, the entry that was signed, even if the whole chain after an alteration
was re-hashed (``rubrong verify --checkpoint FILE --public-key FILE``; the evidence pack's
``verify_pack.py`` checks the same with the standard library alone).

Keys are PEM files: ``checkpoint.key`` PKCS #8 (mode 0600), ``checkpoint.pub``
SubjectPublicKeyInfo. No CLI code here.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection

from workflow.rules.errors import BadInput, IntegrityFailure
from workflow.rules.timeutil import to_bangkok
from workflow.store.chain import Marks, Verification
from workflow.store.database import Database
from workflow.store.history import chain_tip, verify

FORMAT = "rubrong-checkpoint/1"
ALGORITHM = "Ed25519"
KEY_ENV = "RUBRONG_CHECKPOINT_KEY"
PRIVATE_NAME = "checkpoint.key"
PUBLIC_NAME = "checkpoint.pub"
_HASH = re.compile(r"[0-9a-f]{64}")
_SIGNATURE = re.compile(r"[0-9a-f]{128}")


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement "entry ``seq`` of the chain has hash ``head``"."""

    seq: int
    head: str
    recorded_at: str
    signature: str

    def as_json(self) -> dict[str, Any]:
        """The checkpoint file's object."""
        return {
            "format": FORMAT,
            "algorithm": ALGORITHM,
            "seq": self.seq,
            "head": self.head,
            "recorded_at": self.recorded_at,
            "signature": self.signature,
        }


def signed_bytes(seq: int, head: str, recorded_at: str) -> bytes:
    """The exact bytes a checkpoint's signature covers (see the module docstring)."""
    return f"{FORMAT}\nseq={seq}\nhead={head}\nrecorded_at={recorded_at}\n".encode()


def keygen(directory: Path) -> tuple[Path, Path]:
    """Write a new key pair into ``directory``; never overwrite an existing key (exit 2)."""
    private_path, public_path = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise BadInput(f"{path} already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # O_EXCL: a key that appeared meanwhile is not overwritten; 0600 from the start.
        handle = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "wb") as out:
            out.write(private_pem)
        os.chmod(private_path, 0o600)  # whatever the umask
        with public_path.open("xb") as out:
            out.write(public_pem)
    except FileExistsError as exc:
        raise BadInput(f"{exc.filename} already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise BadInput(f"cannot write the key pair into {directory}: {exc.strerror}") from None
    return private_path, public_path


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM file ``path``; exit 2 when missing or not one."""
    data = _read(path, "the checkpoint key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInput(f"{path} is not an Ed25519 private key (PEM, as keygen writes it)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM file ``path``; exit 2 when missing or not one."""
    data = _read(path, "the public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise BadInput(f"{path} is not an Ed25519 public key (PEM, as keygen writes it)")
    return key


def make_checkpoint(conn: Connection, key: Ed25519PrivateKey, recorded_at: str) -> Checkpoint:
    """Sign the current head. The chain is verified first: a broken chain is never signed
    (exit 6); an empty history has nothing to sign (exit 2)."""
    chain = verify(conn)
    if not chain.ok:
        raise IntegrityFailure(
            f"history chain broken at seq {chain.first_bad}: {chain.reason}; nothing signed"
        )
    if chain.entries == 0:
        raise BadInput("the history is empty: there is no head to sign")
    message = signed_bytes(chain.entries, chain.head, recorded_at)
    return Checkpoint(chain.entries, chain.head, recorded_at, key.sign(message).hex())


def parse_checkpoint(value: Any, source: str = "checkpoint") -> Checkpoint:
    """A checkpoint object as read from JSON; exit 2 when it is not one."""
    if not isinstance(value, dict):
        raise BadInput(f"{source} is not a checkpoint (a JSON object)")
    seq, head = value.get("seq"), value.get("head")
    recorded_at, signature = value.get("recorded_at"), value.get("signature")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise BadInput(f"{source}: seq must be a whole number ≥ 1")
    if not isinstance(head, str) or not _HASH.fullmatch(head):
        raise BadInput(f"{source}: head must be 64 lower-case hex digits")
    if not isinstance(recorded_at, str) or not recorded_at:
        raise BadInput(f"{source}: recorded_at must be a time")
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        raise BadInput(f"{source}: signature must be 128 lower-case hex digits")
    if value.get("algorithm", ALGORITHM) != ALGORITHM:
        raise BadInput(f"{source}: algorithm must be {ALGORITHM}")
    return Checkpoint(seq, head, recorded_at, signature)


def read_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint in JSON file ``path``; exit 2 when missing, unreadable or malformed."""
    data = _read(path, "the checkpoint")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadInput(f"{path} is not a checkpoint (not JSON)") from None
    return parse_checkpoint(value, str(path))


def signature_holds(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    """Whether ``public_key`` signed exactly this checkpoint's seq, head and time."""
    message = signed_bytes(checkpoint.seq, checkpoint.head, checkpoint.recorded_at)
    try:
        public_key.verify(bytes.fromhex(checkpoint.signature), message)
    except InvalidSignature:
        return False
    return True


def checkpoint_problem(
    checkpoint: Checkpoint, public_key: Ed25519PublicKey, chain: Verification, marks: Marks
) -> str | None:
    """Why the checkpoint does not hold for a chain verified with ``marks.seq`` =
    ``checkpoint.seq`` (None when it holds). A broken chain is reported by the chain itself."""
    if not signature_holds(checkpoint, public_key):
        return "the checkpoint's signature does not hold for this public key"
    if not chain.ok:
        return f"history chain broken at seq {chain.first_bad}: {chain.reason}"
    if marks.hash_at_seq is None:
        return (
            f"the checkpoint signs entry {checkpoint.seq} but the chain has only "
            f"{chain.entries} entries (entries were removed)"
        )
    if marks.hash_at_seq != checkpoint.head:
        return (
            f"entry {checkpoint.seq} has hash {marks.hash_at_seq}, but the checkpoint signed "
            f"{checkpoint.head} (the history was rewritten)"
        )
    return None


def write_checkpoint(checkpoint: Checkpoint, target: Path) -> None:
    """Write the checkpoint as JSON to ``target`` (atomically: a reader never sees half)."""
    body = json.dumps(checkpoint.as_json(), ensure_ascii=False, indent=2) + "\n"
    partial = target.with_name(f".{target.name}.tmp")
    try:
        partial.write_text(body, encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        raise BadInput(f"cannot write the checkpoint {target}: {exc.strerror or exc}") from None


def daily_checkpoint(
    db: Database, key: Ed25519PrivateKey, directory: Path, now: int
) -> Path | None:
    """Write ``directory/checkpoint-YYYY-MM-DD.json`` (the Bangkok date of ``now``) unless that
    day's file exists or the history is empty; the path written, or None. For ``rubrong run``:
    call it after each wake (a day's first wake signs the head of that moment)."""
    moment = to_bangkok(now)
    target = directory / f"checkpoint-{moment.date().isoformat()}.json"
    if target.exists():
        return None
    with db.read() as conn:
        if chain_tip(conn)[0] == 0:
            return None
        signed = make_checkpoint(conn, key, moment.isoformat(timespec="seconds"))
    directory.mkdir(parents=True, exist_ok=True)
    write_checkpoint(signed, target)
    return target
