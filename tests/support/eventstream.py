"""AWS event stream frames, encoded as Bedrock sends them (botocore only decodes).

A frame: prelude (total length, headers length: 2 uint32 BE), the prelude's CRC32,
headers (name length u8, name, type 7 = string, value length u16 BE, value), payload,
and the CRC32 of everything before it.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    raw = b""
    for name, value in headers.items():
        n, v = name.encode(), value.encode()
        raw += bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 12 + len(raw) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + raw + payload
    return message + struct.pack(">I", binascii.crc32(message))


def chunk(event: dict[str, Any], padding: str = "") -> bytes:
    """A `chunk` event carrying one Anthropic event, as InvokeModelWithResponseStream does."""
    body: dict[str, Any] = {"bytes": base64.b64encode(json.dumps(event).encode()).decode()}
    if padding:
        body["p"] = padding
    headers = {
        ":event-type": "chunk",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return frame(headers, json.dumps(body).encode())


def exception(kind: str, message: str) -> bytes:
    headers = {
        ":exception-type": kind,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, json.dumps({"message": message}).encode())
