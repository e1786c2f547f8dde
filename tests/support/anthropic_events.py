"""The Anthropic events a stand-in model answers with: one text delta per word of `reply`."""

from __future__ import annotations

from typing import Any


def events_for(
    reply: str, model: str, input_tokens: int, pieces: list[str] | None = None
) -> list[dict[str, Any]]:
    """The SSE events of a message answering `reply`: one text delta per word, or per
    piece of `pieces` (which join into the reply) when given."""
    words = reply.split(" ")
    deltas = pieces or [w if i == 0 else " " + w for i, w in enumerate(words)]
    usage = {"input_tokens": max(1, input_tokens), "output_tokens": 1}
    message: dict[str, Any] = {
        "id": "msg_bdrk", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage,
    }  # fmt: skip
    out: list[dict[str, Any]] = [{"type": "message_start", "message": message}]
    block = {"type": "text", "text": ""}
    out.append({"type": "content_block_start", "index": 0, "content_block": block})
    for text in deltas:
        delta = {"type": "text_delta", "text": text}
        out.append({"type": "content_block_delta", "index": 0, "delta": delta})
    out.append({"type": "content_block_stop", "index": 0})
    final = {"stop_reason": "end_turn", "stop_sequence": None}
    used = {"output_tokens": len(deltas)}
    out.append({"type": "message_delta", "delta": final, "usage": used})
    out.append({"type": "message_stop"})
    return out


def message_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    message = dict(events[0]["message"])
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    message["content"] = [{"type": "text", "text": text}]
    message["stop_reason"] = "end_turn"
    message["usage"] = {**message["usage"], "output_tokens": events[-2]["usage"]["output_tokens"]}
    return message
