"""Putting originals back: in text, in a JSON answer, and the escaped forms streams need.

A placeholder can sit at three depths in an answer's bytes:
- depth 0, decoded text (a JSON answer once parsed): the original as it is;
- depth 1, inside a JSON string (`text_delta.text`, `delta.content`): JSON-escaped;
- depth 2, inside JSON text that is itself a JSON string (`input_json_delta.partial_json`,
  `tool_calls[].function.arguments`): escaped for the inner string, then the outer.
Only placeholders of this request's vault are replaced; any other bracketed text
(the model's own, or the client's, which the vault never reuses) passes unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.pii.vault import PLACEHOLDER, PLACEHOLDER_BYTES


def escaped(original: str, depth: int) -> bytes:
    """`original` as bytes that stand for it at `depth` (see the module docstring)."""
    out = original.encode()
    for _ in range(depth):
        out = orjson.dumps(out.decode())[1:-1]
    return out


class Originals:
    """A vault's mapping, with each original's escaped forms computed once."""

    def __init__(self, originals: Mapping[str, str]) -> None:
        self.text = dict(originals)
        self._bytes: dict[tuple[bytes, int], bytes] = {}
        # Every proper prefix of a placeholder ("[", "[E", ... "[EMAIL_1"): what a stream
        # must hold back at the end of a delta, since the next delta may complete it.
        self.prefixes = {p.encode()[:i] for p in self.text for i in range(1, len(p))}
        self.longest = max((len(p) for p in self.text), default=0)

    def restore_text(self, text: str) -> str:
        if "[" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self.text.get(m.group(), m.group()), text)

    def restore_bytes(self, raw: bytes, depth: int) -> bytes:
        if b"[" not in raw:
            return raw
        return PLACEHOLDER_BYTES.sub(lambda m: self._escaped(m.group(), depth), raw)

    def _escaped(self, placeholder: bytes, depth: int) -> bytes:
        key = (placeholder, depth)
        found = self._bytes.get(key)
        if found is None:
            original = self.text.get(placeholder.decode())
            found = placeholder if original is None else escaped(original, depth)
            self._bytes[key] = found
        return found


def restore_json(body: bytes, originals: Originals) -> bytes:
    """A whole JSON answer with originals back in every string; `arguments` strings
    (OpenAI tool calls: JSON inside a string) get the JSON-escaped original."""
    if b"[" not in body:
        return body
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return originals.restore_bytes(body, 1)
    return orjson.dumps(_restore(doc, originals, None))


def _restore(value: Any, originals: Originals, key: str | None) -> Any:
    if isinstance(value, str):
        if key == "arguments" and "[" in value:
            return originals.restore_bytes(value.encode(), 1).decode()
        return originals.restore_text(value)
    if isinstance(value, list):
        return [_restore(v, originals, None) for v in value]
    if isinstance(value, dict):
        return {k: _restore(v, originals, k) for k, v in value.items()}
    return value
