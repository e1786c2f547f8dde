"""A cheap upper-bound-ish estimate of a request's input tokens, made before it is sent.

Reserved at admission and replaced by the provider's real count when the
response ends, so it needs to be cheap and rarely low, not exact:

- text: body bytes / 3. Tokenizers average ~4 characters of English per token
  and JSON adds quoting, so bytes/3 overestimates prose by ~30%; CJK text (3
  UTF-8 bytes per character, ~1 token each) lands near exact.
- base64 images: a fixed 1,600 tokens each (the provider resizes images to
  about that), instead of their size: a 3 MB screenshot is not a million tokens.
  Other base64 documents (PDF) stay at bytes / 3: their page count is unknown.

An estimate above a whole bucket reserves the whole bucket (see `rules.rule_cost`).
"""

from __future__ import annotations

import math
from typing import Any

BYTES_PER_TOKEN = 3
IMAGE_TOKENS = 1600


def estimate_input_tokens(body: bytes | bytearray | int, doc: dict[str, Any] | None = None) -> int:
    size = body if isinstance(body, int) else len(body)
    tokens = 0
    if doc is not None:
        for block in _blocks(doc):
            source = block.get("source")
            if block.get("type") == "image" and isinstance(source, dict):
                data = source.get("data")
                if source.get("type") == "base64" and isinstance(data, str):
                    size -= len(data)
                    tokens += IMAGE_TOKENS
    return tokens + math.ceil(max(0, size) / BYTES_PER_TOKEN)


def _blocks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Content blocks of messages, one level into tool results. Cheap: no deep walk."""
    out: list[dict[str, Any]] = []
    messages = doc.get("messages")
    if not isinstance(messages, list):
        return out
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            out.append(block)
            inner = block.get("content")
            if block.get("type") == "tool_result" and isinstance(inner, list):
                out.extend(b for b in inner if isinstance(b, dict))
    return out
