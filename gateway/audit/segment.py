"""The audit directory's files: segments and tombstones, named `<stream>.<index>.<kind>`.

A stream is one writer's sequence of segments (`audit.stream`, one per process;
`serve --workers N` gives each worker `<stream>-w<i>`). Index 0, 1, 2, … in order.

A segment (`.seg`) is text: line 1 its header, a JSON object in the clear with the
stream, the index, the key id and check value, the salt of its AES key, when it was
created, `prev` (SHA-256 of the previous segment's last whole record line, or
GENESIS), `prev_records` (how many records the previous segment held) and, after a
crash, `recovered` (the truncated record the previous segment ends with), sealed by
`mac`. Every further line is one record: `<n> <base64 AES-256-GCM ciphertext>` of one
sealed audit event (see crypto.py). Nothing else is in the clear.

A tombstone (`.tomb`) replaces a segment deleted by `audit.retention_days`: one JSON
object with the segment's index, key id, creation time, record count, first and last
line hashes, and when and why it was deleted, sealed by `mac` under the writer's key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.audit.crypto import KID, AuditKey, Keyring, SegmentCipher
from gateway.audit.hashchain import GENESIS

FORMAT = 1
STREAM = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
NAME = re.compile(r"^(?P<stream>[a-z0-9][a-z0-9_-]{0,62})\.(?P<index>\d{8})\.(?P<kind>seg|tomb)$")


def name(stream: str, index: int, kind: str = "seg") -> str:
    return f"{stream}.{index:08d}.{kind}"


def line_hash(line: bytes) -> str:
    """The link between segments: SHA-256 of a record line as written (no newline)."""
    return hashlib.sha256(line).hexdigest()


class FormatError(ValueError):
    """A header or tombstone that cannot be trusted; the message says why."""


class WrongKey(FormatError):
    """The key id is not among the keys given, or the key given for it is another one."""


def seal(fields: dict[str, Any], key: AuditKey) -> bytes:
    body = {**fields, "kid": key.kid, "check": key.check}
    body["mac"] = key.mac(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    return orjson.dumps(body)


def unseal(raw: bytes, keys: Keyring, what: str) -> dict[str, Any]:
    """The fields of a header or tombstone whose MAC holds under a given key."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FormatError(f"{what} is not JSON (damaged)") from None
    if not isinstance(body, dict) or not isinstance(body.get("mac"), str):
        raise FormatError(f"{what} has no mac (not an audit {what})")
    kid = body.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        # SECURITY: only a well-formed key id is repeated from the file.
        kid = kid if isinstance(kid, str) and KID.match(kid) else "(no valid key id)"
        raise WrongKey(
            f"{what} is encrypted with key id {kid}, which was not given "
            f"(pass it: --key-env {kid}=VAR or --key-file {kid}=PATH)"
        )
    if body.get("check") != key.check:
        raise WrongKey(
            f"wrong key for key id {kid}: the key given is not the one it was written with"
        )
    mac = body.pop("mac")
    if not hmac.compare_digest(key.mac(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)), mac):
        raise FormatError(f"{what} was edited: its mac does not match its content")
    body["mac"] = mac
    return body


def opened(header_line: bytes, keys: Keyring) -> tuple[dict[str, Any], SegmentCipher, bytes]:
    """A segment's checked header, its cipher and its records' additional data."""
    header = unseal(header_line, keys, "segment header")
    key = keys.get(str(header["kid"]))
    assert key is not None  # unseal found it
    try:
        salt = bytes.fromhex(str(header["salt"]))
    except ValueError:
        raise FormatError("segment header has no salt") from None
    return header, key.segment_cipher(salt), bytes.fromhex(str(header["mac"]))


@dataclass(frozen=True, slots=True)
class Contents:
    """A segment file split into lines; `partial` is an unfinished last line (a crash)."""

    header: bytes
    records: list[bytes]
    partial: bytes

    @property
    def last_hash(self) -> str | None:
        return line_hash(self.records[-1]) if self.records else None


def read(path: str) -> Contents:
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    partial = lines.pop()  # b"" when the file ends with a newline
    if not lines:
        return Contents(b"", [], partial)
    return Contents(lines[0], lines[1:], partial)


def listing(directory: str) -> dict[str, dict[int, dict[str, str]]]:
    """stream -> index -> kind -> path, for every file that has an audit name."""
    out: dict[str, dict[int, dict[str, str]]] = {}
    for entry in os.listdir(directory):
        m = NAME.match(entry)
        if m:
            by_index = out.setdefault(m["stream"], {})
            by_index.setdefault(int(m["index"]), {})[m["kind"]] = os.path.join(directory, entry)
    return out


def header_fields(
    stream: str, index: int, salt: bytes, created: str, prev: str, prev_records: int | None,
    recovered: dict[str, int] | None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "zdr_audit_segment": FORMAT,
        "stream": stream,
        "index": index,
        "salt": salt.hex(),
        "created": created,
        "prev": prev,
        "prev_records": prev_records,
        "recovered": recovered,
    }


__all__ = [
    "GENESIS",
    "Contents",
    "FormatError",
    "listing",
    "name",
    "opened",
    "read",
    "seal",
    "unseal",
]
