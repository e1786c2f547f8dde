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
import contextlib
import hashlib
import json
import re
import ssl
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*(?:_[0-9]+)?\]")


def _h(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class EchoUpstream:
    def __init__(self, lengths: set[int]) -> None:
        self.lengths = lengths
        # Set for Claude Code: asked with its tools, the first answer is a Read of the
        # file named by the first placeholder in this directory; after the tool result,
        # text only (end_turn), so the client's loop ends.
        self.read_dir: str | None = None
        self.hashes: set[str] = set()
        self.body_hashes: list[str] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/messages", self.messages)
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_post("/v1/responses", self.responses)

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
        tool_name, tool_input = "send", {"to": found[0] if found else "", "all": found}
        if doc.get("tools"):
            names = {t.get("name") for t in doc["tools"]}
            last = doc["messages"][-1]["content"]
            answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
            if "Read" in names and self.read_dir and found and not answered:
                tool_name, tool_input = "Read", {"file_path": f"{self.read_dir}/{found[0]}"}
            else:
                tool_name = ""  # a text answer only
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
        if not tool_name:
            await _end(resp, "end_turn")
            return resp
        block = {"type": "tool_use", "id": "toolu_01", "name": tool_name, "input": {}}
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
        await _end(resp, "tool_use")
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

    async def responses(self, request: web.Request) -> web.StreamResponse:
        """A Responses stream: the message text, then a function call's arguments, each
        in small deltas, with some events split across network writes."""
        body = await request.read()
        doc = json.loads(body)
        found = self._record(body, doc)
        text = "Reply for " + ", ".join(found) + "."
        args = json.dumps({"to": found[0] if found else ""})
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        seq = iter(range(1000))
        response = {
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "status": "in_progress",
            "model": doc.get("model", "m"),
            "output": [],
        }

        async def event(kind: str, split: bool = False, **fields: Any) -> None:
            await _write(resp, kind, {"type": kind, "sequence_number": next(seq), **fields}, split)

        msg_item = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        call_item = {
            "id": "fc_1",
            "type": "function_call",
            "call_id": "call_1",
            "name": "send",
            "arguments": args,
            "status": "completed",
        }
        part: dict[str, Any] = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
        await event("response.created", response=response)
        await event(
            "response.output_item.added",
            output_index=0,
            item={**msg_item, "content": [], "status": "in_progress"},
        )
        await event(
            "response.content_part.added",
            **part,
            part={"type": "output_text", "text": "", "annotations": []},
        )
        for piece in _pieces(text, 3):
            await event("response.output_text.delta", True, **part, delta=piece, logprobs=[])
        await event("response.output_text.done", **part, text=text, logprobs=[])
        await event("response.content_part.done", **part, part=msg_item["content"][0])
        await event("response.output_item.done", output_index=0, item=msg_item)
        await event(
            "response.output_item.added",
            output_index=1,
            item={**call_item, "arguments": "", "status": "in_progress"},
        )
        for piece in _pieces(args, 4):
            await event(
                "response.function_call_arguments.delta",
                item_id="fc_1",
                output_index=1,
                delta=piece,
            )
        await event(
            "response.function_call_arguments.done", item_id="fc_1", output_index=1, arguments=args
        )
        await event("response.output_item.done", output_index=1, item=call_item)
        done = {**response, "status": "completed", "output": [msg_item, call_item]}
        await event("response.completed", response=done)
        await resp.write_eof()
        return resp


@contextlib.asynccontextmanager
async def serving(stub: EchoUpstream, cert_files: dict[str, str]) -> AsyncIterator[str]:
    """The stand-in on a free port over TLS (the tests' certificate): its base URL."""
    from gateway.serve import server

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_files["cert_file"], cert_files["key_file"])
    runner = web.AppRunner(stub.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    try:
        yield f"https://localhost:{server.bound_port(site)}"
    finally:
        await runner.cleanup()


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


async def _end(resp: web.StreamResponse, stop_reason: str) -> None:
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    message_delta = {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 9}}
    await _write(resp, "message_delta", message_delta)
    await _write(resp, "message_stop", {"type": "message_stop"})
    await resp.write_eof()


async def _data(resp: web.StreamResponse, data: Any) -> None:
    await resp.write(f"data: {json.dumps(data)}\n\n".encode())
