"""Signing key files: created safely, parsed once, wrong files refused with the path named."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth.keyset import (
    KeyLoadError,
    kid_of,
    load_keyset,
    load_private_key,
    load_public_key,
    write_key_pair,
)
from gateway.auth.settings import SigningKey


def test_key_pair_files_and_modes(tmp_path: Path) -> None:
    private_path, public_path = write_key_pair(tmp_path, "2026-11")
    assert private_path.name == "2026-11.key.pem"
    assert public_path.name == "2026-11.pub.pem"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert b"PRIVATE" not in public_path.read_bytes()
    assert kid_of(private_path) == "2026-11"
    load_private_key(private_path)
    load_public_key(public_path)


def test_never_overwrites_a_private_key(tmp_path: Path) -> None:
    write_key_pair(tmp_path, "k")
    before = (tmp_path / "k.key.pem").read_bytes()
    with pytest.raises(FileExistsError):
        write_key_pair(tmp_path, "k")
    assert (tmp_path / "k.key.pem").read_bytes() == before


def test_load_keyset_by_kid(tmp_path: Path) -> None:
    _, a = write_key_pair(tmp_path, "a")
    _, b = write_key_pair(tmp_path, "b")
    ks = load_keyset(
        [SigningKey(kid="a", public_key_file=str(a)), SigningKey(kid="b", public_key_file=str(b))]
    )
    assert sorted(ks) == ["a", "b"]
    assert ks.get("c") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"not a pem", "not a PEM public key"),
        ("ec", "expected an Ed25519 public key"),
    ],
)
def test_bad_public_key_files(tmp_path: Path, content: bytes | str | None, message: str) -> None:
    path = tmp_path / "x.pub.pem"
    if content == "ec":
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        path.write_bytes(
            key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(KeyLoadError, match=message) as exc:
        load_public_key(path)
    assert str(path) in str(exc.value)


def test_public_key_is_not_a_signing_key(tmp_path: Path) -> None:
    _, public_path = write_key_pair(tmp_path, "k")
    with pytest.raises(KeyLoadError, match="not an unencrypted PEM private key"):
        load_private_key(public_path)
