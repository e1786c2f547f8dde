"""A stand-in model API for the pii tests that keeps only hashes of what it saw.

For every request it records SHA-256 hashes of every substring, of the lengths it is
told to watch, of the raw body and of each decoded string in it: a test can then ask
"did this exact value reach the upstream?" without the stand-in ever holding the value.
It answers by echoing the placeholders it found back, in a text block and in a tool
call's input, split into small deltas (a placeholder across deltas) and with events
split across writes (a placeholder across network chunks).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any

from aiohttp import web

PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*(?:_[0-9]+)?\]")


def _h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class EchoUpstream:
    def __init__(self, lengths: set[int]) -> None:
        self.lengths = lengths
        self.hashes: set[str] = set()
        self.body_hashes: list[str] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/messages", self.messages)
        self.app.router.add_post("/v1/chat/completions", self.chat)

    def saw(self, value: str) -> bool:
        return _h(value) in self.hashes

    def _record(self, body: bytes, doc: Any) -> list[str]:
        self.body_hashes.append(hashlib.sha256(body).hexdigest())
        texts = [body.decode(errors="replace")]
        stack = [doc]
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                texts.append(node)
            elif isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, dict):
                stack.extend(node.keys())
                stack.extend(node.values())
        for text in texts:
            for n in self.lengths:
                for i in range(len(text) - n + 1):
                    self.hashes.add(_h(text[i : i + n]))
        found: list[str] = []
        for text in texts[1:]:
            for p in PLACEHOLDER.findall(text):
                if p not in found:
                    found.append(p)
        return found

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        doc = json.loads(body)
        found = self._record(body, doc)
        text = "Reply for " + ", ".join(found) + "."
        tool_input = {"to": found[0] if found else "", "all": found}
        if not doc.get("stream"):
            return web.json_response(_message(text, tool_input))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        msg = _message("", {})
        msg["content"] = []
        await _write(resp, "message_start", {"type": "message_start", "message": msg})
        start = {"type": "text", "text": ""}
        await _write(
            resp,
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": start},
        )
        for part in _pieces(text, 3):
            delta = {"type": "text_delta", "text": part}
            await _write(
                resp,
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": delta},
                split=True,
            )
        await _write(resp, "content_block_stop", {"type": "content_block_stop", "index": 0})
        block = {"type": "tool_use", "id": "toolu_01", "name": "send", "input": {}}
        await _write(
            resp,
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": block},
        )
        for part in _pieces(json.dumps(tool_input), 4):
            delta = {"type": "input_json_delta", "partial_json": part}
            await _write(
                resp,
                "content_block_delta",
                {"type": "content_block_delta", "index": 1, "delta": delta},
            )
        await _write(resp, "content_block_stop", {"type": "content_block_stop", "index": 1})
        await _write(
            resp,
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 9},
            },
        )
        await _write(resp, "message_stop", {"type": "message_stop"})
        await resp.write_eof()
        return resp

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        doc = json.loads(body)
        found = self._record(body, doc)
        text = "Reply for " + ", ".join(found) + "."
        args = json.dumps({"to": found[0] if found else ""})
        env = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": doc.get("model", "m"),
        }
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for part in _pieces(text, 3):
            choice = {"index": 0, "delta": {"content": part}, "finish_reason": None}
            await _data(resp, {**env, "choices": [choice]})
        call = {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "send", "arguments": ""},
        }
        await _data(
            resp,
            {
                **env,
                "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}],
            },
        )
        for part in _pieces(args, 4):
            call = {"index": 0, "function": {"arguments": part}}
            await _data(
                resp,
                {
                    **env,
                    "choices": [
                        {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}
                    ],
                },
            )
        await _data(
            resp, {**env, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
        )
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _pieces(text: str, n: int) -> list[str]:
    return [text[i : i + n] for i in range(0, len(text), n)] or [""]


def _message(text: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [
            {"type": "text", "text": text},
            {"type": "tool_use", "id": "toolu_01", "name": "send", "input": tool_input},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 9},
    }


async def _write(resp: web.StreamResponse, event: str, data: Any, split: bool = False) -> None:
    raw = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
    if split:
        # Across two network writes, cut inside the delta's JSON.
        cut = len(raw) - 7
        await resp.write(raw[:cut])
        await asyncio.sleep(0.001)
        await resp.write(raw[cut:])
    else:
        await resp.write(raw)


async def _data(resp: web.StreamResponse, data: Any) -> None:
    await resp.write(f"data: {json.dumps(data)}\n\n".encode())
