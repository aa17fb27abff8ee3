"""``verify`` (``--head``, ``--since``, ``--checkpoint``): the auditor's check of the chain.

It recomputes the whole chain in one streaming pass on the bare database driver when it can
(no SQLAlchemy to import) and notices, on the way, the entry an auditor's kept hash names
(``--since``) and the entry a signed checkpoint names. The signature library is loaded only
for ``--checkpoint``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from workflow.cli.app import JsonOption, app, print_json, settings
from workflow.cli.reads import reading
from workflow.rules.errors import BadInput, IntegrityFailure
from workflow.store.chain import Marks, require_valid, verify_chain

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from workflow.usecases.checkpoint import Checkpoint

_HASH = re.compile(r"[0-9a-fA-F]{64}")


def _unknown_hash(value: str) -> BadInput:
    return BadInput(f"--since: no history entry has hash {value!r}")


@app.command(name="verify")
def verify_command(
    ctx: typer.Context,
    head: Annotated[
        str | None, typer.Option("--head", help="the hash the chain must end at")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="a hash you kept: prove the chain only grew after it"),
    ] = None,
    checkpoint_file: Annotated[
        Path | None, typer.Option("--checkpoint", help="a signed checkpoint (JSON) to check")
    ] = None,
    public_key_file: Annotated[
        Path | None, typer.Option("--public-key", help="the checkpoint's public key (PEM)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the history hash chain; exit 6 naming the first bad entry."""
    options = settings(ctx)
    if since is not None and not _HASH.fullmatch(since.strip()):
        raise _unknown_hash(since)  # malformed: a usage error, before anything is read
    kept = since.strip().lower() if since is not None else None
    if (checkpoint_file is None) != (public_key_file is None):
        raise BadInput("--checkpoint and --public-key go together")
    checkpoint: Checkpoint | None = None
    public_key: Ed25519PublicKey | None = None
    if checkpoint_file is not None and public_key_file is not None:
        from workflow.usecases.checkpoint import load_public_key, read_checkpoint

        checkpoint = read_checkpoint(checkpoint_file)
        public_key = load_public_key(public_key_file)
    marks = Marks(since=kept, seq=checkpoint.seq if checkpoint else None)
    with reading(options) as reader:
        result = verify_chain(reader, head, marks)
    out: dict[str, Any] = result.as_json()
    problem: str | None = None
    if kept is not None:
        if result.ok and marks.since_seq is None:
            raise _unknown_hash(since or "")
        out["since_seq"] = marks.since_seq
        out["added"] = None if marks.since_seq is None else result.entries - marks.since_seq
    if checkpoint is not None and public_key is not None:
        from workflow.usecases.checkpoint import checkpoint_problem

        problem = checkpoint_problem(checkpoint, public_key, result, marks)
        out["checkpoint"] = {**checkpoint.as_json(), "holds": problem is None}
        if problem is not None and result.ok:
            out.update(ok=False, reason=problem)
    if as_json:
        print_json(out)
    else:
        if not result.ok:
            state = f"BROKEN at seq {result.first_bad}: {result.reason}"
        else:
            state = "ok" if problem is None else f"CHECKPOINT DOES NOT HOLD: {problem}"
        sys.stdout.write(_line(state, out) + "\n")
    require_valid(result)
    if problem is not None:
        raise IntegrityFailure(f"checkpoint does not hold: {problem}")


def _line(state: str, out: dict[str, Any]) -> str:
    line = f"{state}; {out['entries']} entries verified; head {out['head']}"
    if out.get("since_seq") is not None:
        line += f"; since seq {out['since_seq']}: {out['added']} entries added"
    if out.get("checkpoint", {}).get("holds"):
        signed = out["checkpoint"]
        line += f"; checkpoint of seq {signed['seq']} ({signed['recorded_at']}) holds"
    return line
