"""Add top-level fields to a JSON object's bytes without re-serialising it.

The policy's rewrites set fields the client left out (OpenAI `store: false` on
every chat completion and Responses call). The body was parsed as an object, so
appending `,"key":value` before its closing brace gives the same document as
re-encoding it with the field added, without a second pass over a body that
may be megabytes long.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

_SPACE = b" \t\r\n"


def append_fields(
    raw: bytes | bytearray, fields: Iterable[tuple[str, Any]]
) -> bytes | bytearray | None:
    """`raw` (a JSON object none of whose keys are in `fields`) with `fields` added;
    None when `raw` does not end like an object (the caller re-serialises instead)."""
    body = raw.rstrip(_SPACE)
    if not body.endswith(b"}"):
        return None
    head = body[:-1].rstrip(_SPACE)
    parts = [orjson.dumps(k) + b":" + orjson.dumps(v) for k, v in fields]
    if not parts:
        return raw
    sep = b"" if head.endswith(b"{") else b","
    return head + sep + b",".join(parts) + b"}"
