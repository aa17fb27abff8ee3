"""Signed checkpoints (CONTRACT.md, Additions): ``keygen``, ``checkpoint``, ``verify
--checkpoint``; and the standard-library Ed25519 verifier of the evidence pack against
signatures made by ``cryptography``."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import Cli
from tests.support.history import first_part, raw_sql, rewrite_chain, year_goes_on
from workflow.rules.timeutil import parse_instant
from workflow.store.database import Database
from workflow.usecases.checkpoint import KEY_ENV, daily_checkpoint, load_private_key, signed_bytes
from workflow.usecases.evidence_verifier import CHECKPOINT_FORMAT, ed25519_verify, pem_public_key


def keys(cli: Cli, tmp_path: Path, name: str = "keys") -> tuple[Path, Path]:
    result = cli("keygen", "--out", str(tmp_path / name))
    assert result.code == 0, result.err
    return tmp_path / name / "checkpoint.key", tmp_path / name / "checkpoint.pub"


def test_keygen_writes_a_private_key_only_its_owner_reads(cli: Cli, tmp_path: Path) -> None:
    private, public = keys(cli, tmp_path)
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert pem_public_key(public.read_text()) == loaded.public_key().public_bytes_raw()
    before = private.read_bytes(), public.read_bytes()
    again = cli("keygen", "--out", str(tmp_path / "keys"))
    assert again.code == 2 and "refusing to overwrite" in again.err
    assert (private.read_bytes(), public.read_bytes()) == before


def test_a_checkpoint_verifies_offline_as_the_year_goes_on(loaded: Cli, tmp_path: Path) -> None:
    private, public = keys(loaded, tmp_path)
    empty = loaded("checkpoint", "--key", str(private))
    assert empty.code == 2 and "empty" in empty.err and empty.out == ""
    head = first_part(loaded)
    entries = len(loaded("history", "--json").json())
    printed_out = loaded("checkpoint", "--key", str(private))
    assert printed_out.code == 0, printed_out.err
    signed = printed_out.json()
    assert {"seq", "head", "recorded_at", "signature"} <= set(signed)
    assert (signed["seq"], signed["head"]) == (entries, head)
    assert signed["recorded_at"].endswith("+07:00")
    point = tmp_path / "checkpoint.json"
    written = loaded("checkpoint", "--key", str(private), "-o", str(point))
    assert written.code == 0 and written.out == ""
    assert json.loads(point.read_text())["head"] == head
    # The signature is over the documented bytes and any Ed25519 implementation checks it.
    message = signed_bytes(signed["seq"], signed["head"], signed["recorded_at"])
    raw_public = pem_public_key(public.read_text())
    assert raw_public is not None
    assert ed25519_verify(raw_public, message, bytes.fromhex(signed["signature"]))

    year_goes_on(loaded)
    result = loaded("verify", "--checkpoint", str(point), "--public-key", str(public), "--json")
    assert result.code == 0, result.err
    answer = result.json()
    assert answer["ok"] is True and answer["entries"] > entries
    assert answer["checkpoint"]["holds"] is True and answer["checkpoint"]["seq"] == entries
    plain = loaded("verify", "--checkpoint", str(point), "--public-key", str(public))
    assert plain.code == 0 and f"checkpoint of seq {entries}" in plain.out
    # with --since (the same head) in the same single pass
    both = loaded(
        "verify", "--since", head, "--checkpoint", str(point), "--public-key", str(public), "--json"
    )
    assert both.code == 0 and both.json()["since_seq"] == entries


def test_a_rewritten_chain_verifies_but_the_checkpoint_does_not(
    loaded: Cli, tmp_path: Path
) -> None:
    private, public = keys(loaded, tmp_path)
    first_part(loaded)
    point = tmp_path / "checkpoint.json"
    assert loaded("checkpoint", "--key", str(private), "-o", str(point)).code == 0
    signed = json.loads(point.read_text())
    year_goes_on(loaded)
    rewrite_chain(loaded.db_url, 2, "admin")
    assert loaded("verify").code == 0  # the forgery is self-consistent
    result = loaded("verify", "--checkpoint", str(point), "--public-key", str(public), "--json")
    assert result.code == 6
    assert result.json()["ok"] is False and result.json()["checkpoint"]["holds"] is False
    assert f"entry {signed['seq']}" in result.err and "rewritten" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_a_wrong_key_or_an_edited_checkpoint_fails(loaded: Cli, tmp_path: Path) -> None:
    private, public = keys(loaded, tmp_path)
    _, other_public = keys(loaded, tmp_path, "other")
    first_part(loaded)
    point = tmp_path / "checkpoint.json"
    assert loaded("checkpoint", "--key", str(private), "-o", str(point)).code == 0
    wrong = loaded("verify", "--checkpoint", str(point), "--public-key", str(other_public))
    assert wrong.code == 6 and "signature does not hold" in wrong.err
    edited = json.loads(point.read_text())
    edited["seq"] -= 1  # a real entry, but not the one signed
    fake = tmp_path / "edited.json"
    fake.write_text(json.dumps(edited))
    result = loaded("verify", "--checkpoint", str(fake), "--public-key", str(public))
    assert result.code == 6 and "signature does not hold" in result.err
    # Entries cut off the end below the signed seq: the checkpoint catches it.
    signed_seq = json.loads(point.read_text())["seq"]
    raw_sql(loaded, "DELETE FROM history WHERE seq >= :seq", seq=signed_seq)
    assert loaded("verify").code == 0
    cut = loaded("verify", "--checkpoint", str(point), "--public-key", str(public))
    assert cut.code == 6 and "removed" in cut.err
    # An altered entry breaks the chain itself: 6 naming the seq.
    raw_sql(loaded, "UPDATE history SET actor = 'x' WHERE seq = 1")
    broken = loaded("verify", "--checkpoint", str(point), "--public-key", str(public))
    assert broken.code == 6 and "seq 1" in broken.err


def test_bad_files_and_usage_are_exit_2(loaded: Cli, tmp_path: Path) -> None:
    private, public = keys(loaded, tmp_path)
    first_part(loaded)
    point = tmp_path / "checkpoint.json"
    assert loaded("checkpoint", "--key", str(private), "-o", str(point)).code == 0
    garbage = tmp_path / "garbage"
    garbage.write_text("not json {")
    half = tmp_path / "half.json"
    half.write_text(json.dumps({"seq": 1, "head": "ab"}))
    cases = [
        ("verify", "--checkpoint", str(tmp_path / "missing.json"), "--public-key", str(public)),
        ("verify", "--checkpoint", str(garbage), "--public-key", str(public)),
        ("verify", "--checkpoint", str(half), "--public-key", str(public)),
        ("verify", "--checkpoint", str(point), "--public-key", str(garbage)),
        ("verify", "--checkpoint", str(point), "--public-key", str(private)),
        ("verify", "--checkpoint", str(point)),
        ("checkpoint", "--key", str(public)),
        ("checkpoint", "--key", str(tmp_path / "missing.key")),
        ("checkpoint",),
    ]
    for args in cases:
        result = loaded(*args)
        assert result.code == 2, (args, result.out, result.err)
        assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err, args


def test_the_key_may_come_from_the_environment(loaded: Cli, tmp_path: Path) -> None:
    private, public = keys(loaded, tmp_path)
    first_part(loaded)
    point = tmp_path / "point.json"
    result = loaded.subprocess("checkpoint", "-o", str(point), env={KEY_ENV: str(private)})
    assert result.code == 0, result.err
    check = loaded.subprocess("verify", "--checkpoint", str(point), "--public-key", str(public))
    assert check.code == 0, check.err


# --- the pack's pure-Python Ed25519 ------------------------------------------------------------


def test_rfc_8032_test_vector_1() -> None:
    secret = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    key = Ed25519PrivateKey.from_private_bytes(secret)
    assert key.public_key().public_bytes_raw() == public
    assert key.sign(b"") == signature
    assert ed25519_verify(public, b"", signature)
    assert not ed25519_verify(public, b"x", signature)


@pytest.mark.parametrize("size", [0, 1, 64, 1000])
def test_pure_python_ed25519_agrees_with_cryptography(size: int) -> None:
    for _ in range(3):
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes_raw()
        message = os.urandom(size)
        signature = key.sign(message)
        assert ed25519_verify(public, message, signature)
        for position in (0, 31, 32, 63):  # R and S, low and high bytes
            bad = bytearray(signature)
            bad[position] ^= 0x01
            assert not ed25519_verify(public, message, bytes(bad))
        if message:
            assert not ed25519_verify(public, bytes([message[0] ^ 1]) + message[1:], signature)
        other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        assert not ed25519_verify(other, message, signature)
    assert not ed25519_verify(b"short", b"", bytes(64))
    # S ≥ L is rejected (malleability): add L to a valid S.
    key = Ed25519PrivateKey.generate()
    signature = key.sign(b"m")
    order = 2**252 + 27742317777372353535851937790883648493
    big_s = (int.from_bytes(signature[32:], "little") + order).to_bytes(32, "little")
    public = key.public_key().public_bytes_raw()
    assert not ed25519_verify(public, b"m", signature[:32] + big_s)


def test_the_signed_bytes_are_documented_once() -> None:
    assert (
        signed_bytes(7, "ab" * 32, "2011-01-01T00:00:00+07:00")
        == (
            f"{CHECKPOINT_FORMAT}\nseq=7\nhead={'ab' * 32}\nrecorded_at=2011-01-01T00:00:00+07:00\n"
        ).encode()
    )


def test_one_checkpoint_a_day_for_the_service(loaded: Cli, tmp_path: Path) -> None:
    private, public = keys(loaded, tmp_path)
    key = load_private_key(private)
    folder = tmp_path / "daily"
    db = Database(loaded.db_url)
    try:
        morning = parse_instant("2010-09-14T09:00")
        assert daily_checkpoint(db, key, folder, morning) is None  # nothing to sign yet
        first_part(loaded)
        written = daily_checkpoint(db, key, folder, morning)
        assert written == folder / "checkpoint-2010-09-14.json"
        assert daily_checkpoint(db, key, folder, morning + 3600) is None  # once a day
        year_goes_on(loaded)
        later = daily_checkpoint(db, key, folder, parse_instant("2010-09-15T00:00"))
        assert later == folder / "checkpoint-2010-09-15.json"
    finally:
        db.dispose()
    first, second = (json.loads(p.read_text()) for p in (written, later))
    assert first["recorded_at"] == "2010-09-14T09:00:00+07:00" and second["seq"] > first["seq"]
    for point in (written, later):
        check = loaded("verify", "--checkpoint", str(point), "--public-key", str(public))
        assert check.code == 0, check.err
