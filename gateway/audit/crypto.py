"""Audit encryption at rest: AES-256-GCM (cryptography's AEAD) per record.

An operator key (`AuditKey`) is 32 random bytes, written as base64 (`zdr-gateway audit
new-key`) and named by a key id. Nothing is encrypted under it directly; HKDF-SHA256
derives from it
- a MAC key: segment headers and tombstones carry HMAC-SHA256 under it, and a short
  key check value (`check`) lets a reader tell a wrong key from an edited header;
- one AES-256-GCM key per segment, from the segment's random salt. A record's nonce is
  its number in the segment (0, 1, 2, …): unique per key by construction, so no nonce
  is ever reused, and written in front of the ciphertext so a moved record still opens
  and the hash chain inside names the move.
The additional data of every record is the segment header's MAC: a record copied into
another segment does not open there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# `cryptography` is imported when a key is first made (start-up of a file sink, or
# `audit verify`), not with this module: config validation (parse_key) needs none of
# it, and a gateway without `sink: file` or TLS never loads it (idle RSS, bench/README.md).

KEY_BYTES = 32
KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_MAC_INFO = b"zdr-gateway audit mac v1"
_SEGMENT_INFO = b"zdr-gateway audit segment v1"
_CHECK = b"zdr-gateway audit key check v1"


class BadKey(ValueError):
    """A key that cannot be used; the message never contains key material."""


def parse_key(text: str) -> bytes:
    """32 bytes from base64 (standard or URL-safe) or 64 hex digits."""
    value = text.strip()
    raw: bytes | None = None
    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raw = bytes.fromhex(value)
    else:
        try:
            raw = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != KEY_BYTES:
        raise BadKey(
            "not a 32-byte key: expected base64 of 32 random bytes (or 64 hex digits); "
            "make one with `zdr-gateway audit new-key`"
        )
    return raw


def new_key() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def _hkdf(master: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(master)


@dataclass(frozen=True, slots=True)
class AuditKey:
    kid: str
    master: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)
    check: str

    @classmethod
    def of(cls, kid: str, master: bytes) -> AuditKey:
        mac_key = _hkdf(master, _MAC_INFO)
        check = hmac.new(mac_key, _CHECK, hashlib.sha256).hexdigest()[:16]
        return cls(kid, master, mac_key, check)

    def mac(self, data: bytes) -> str:
        return hmac.new(self.mac_key, data, hashlib.sha256).hexdigest()

    def segment_cipher(self, salt: bytes) -> SegmentCipher:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return SegmentCipher(AESGCM(_hkdf(self.master, _SEGMENT_INFO, salt)), InvalidTag)


class RecordError(ValueError):
    """A record line that does not open: edited, truncated, or from elsewhere."""


@dataclass(frozen=True, slots=True)
class SegmentCipher:
    aead: AESGCM
    invalid: type[Exception]  # cryptography's InvalidTag (imported with the cipher)

    def seal(self, n: int, plaintext: bytes, aad: bytes) -> bytes:
        """The record line (no newline): `<n> <base64 of ciphertext and tag>`."""
        ct = self.aead.encrypt(n.to_bytes(12, "big"), plaintext, aad)
        # PERF: bytes all the way (no str round trip), binascii without base64's wrapper.
        return b"%d %s" % (n, binascii.b2a_base64(ct, newline=False))

    def open(self, line: bytes, aad: bytes) -> tuple[int, bytes]:
        number, _, body = line.partition(b" ")
        if not number.isdigit() or len(number) > 19 or not body:
            raise RecordError("not a record")
        n = int(number)
        try:
            return n, self.aead.decrypt(
                n.to_bytes(12, "big"), binascii.a2b_base64(body, strict_mode=True), aad
            )
        except (self.invalid, binascii.Error, ValueError):
            raise RecordError("does not authenticate") from None


class Keyring:
    """Keys by id; the first one given is the one new segments are written with."""

    def __init__(self, keys: Iterable[AuditKey]) -> None:
        self.keys = {k.kid: k for k in keys}
        self.current = next(iter(self.keys.values()), None)

    def __contains__(self, kid: str) -> bool:
        return kid in self.keys

    def get(self, kid: str) -> AuditKey | None:
        return self.keys.get(kid)
