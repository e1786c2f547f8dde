"""Verification keys for gateway-issued keys, parsed once at load and looked up by `kid`.

Rotation is configuration: list the new key next to the old one, issue with
the new one, and remove the old public key when its keys should stop working.

cryptography (~8 MiB resident) is imported by the functions that read or make
keys, not by this module: a gateway that lists no signing keys never loads it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.auth.settings import SigningKey

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )


class KeyLoadError(Exception):
    """A key file is missing or is not an Ed25519 key. The message names the file only."""


class KeySet(Mapping[str, "Ed25519PublicKey"]):
    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    def __getitem__(self, kid: str) -> Ed25519PublicKey:
        return self._keys[kid]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def load_keyset(entries: Iterable[SigningKey]) -> KeySet:
    return KeySet({e.kid: load_public_key(e.public_key_file) for e in entries})


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"{path}: cannot read public key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise KeyLoadError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyLoadError(f"{path}: expected an Ed25519 public key (zdr-gateway keys init)")
    return key


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"{path}: cannot read signing key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyLoadError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyLoadError(f"{path}: expected an Ed25519 private key (zdr-gateway keys init)")
    return key


def kid_of(private_key_path: str | os.PathLike[str]) -> str:
    """`DIR/KID.key.pem` → `KID` (the naming `keys init` uses)."""
    name = Path(private_key_path).name
    return name.removesuffix(".pem").removesuffix(".key")


def write_key_pair(out_dir: str | os.PathLike[str], kid: str) -> tuple[Path, Path]:
    """A fresh Ed25519 pair: `KID.key.pem` (0600, created exclusively) and `KID.pub.pem`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / f"{kid}.key.pem", out / f"{kid}.pub.pem"
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # SECURITY: O_EXCL never overwrites an existing key; 0600 from the first byte (no chmod race).
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:  # ZDR-OK: keys init writes a key pair
        f.write(pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path
