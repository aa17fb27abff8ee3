"""Signed checkpoints: ``keygen`` and ``checkpoint`` (``verify`` checks them: cli/verify.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from workflow.cli.app import app, print_json, settings
from workflow.rules.errors import BadInput
from workflow.rules.timeutil import to_bangkok
from workflow.usecases.checkpoint import (
    KEY_ENV,
    keygen,
    load_private_key,
    make_checkpoint,
    write_checkpoint,
)


@app.command(name="keygen")
def keygen_command(
    out: Annotated[
        Path, typer.Option("--out", help="directory for checkpoint.key and checkpoint.pub")
    ],
) -> None:
    """Write an Ed25519 key pair for signed checkpoints (the private key with mode 0600)."""
    private_path, public_path = keygen(out)
    sys.stdout.write(
        f"wrote {private_path} (private: keep it secret) and {public_path} (give it to auditors)\n"
    )


@app.command(name="checkpoint")
def checkpoint_command(
    ctx: typer.Context,
    key: Annotated[
        Path | None,
        typer.Option("--key", help=f"the private key (PEM; env {KEY_ENV})", show_default=False),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here instead of stdout")
    ] = None,
) -> None:
    """Sign the current head of the history chain; print (or write) the checkpoint JSON."""
    options = settings(ctx)
    key_path = key or (Path(os.environ[KEY_ENV]) if os.environ.get(KEY_ENV) else None)
    if key_path is None:
        raise BadInput(f"checkpoint: give --key FILE (or set {KEY_ENV})")
    private_key = load_private_key(key_path)
    with options.database().read() as conn:
        signed = make_checkpoint(conn, private_key, _now(options.clock.now()))
    if output is None:
        print_json(signed.as_json())
        return
    write_checkpoint(signed, output)
    sys.stderr.write(f"wrote {output}: seq {signed.seq}, head {signed.head}\n")


def _now(instant: int) -> str:
    return to_bangkok(instant).isoformat(timespec="seconds")
