"""A local stand-in for an OpenAI-compatible API (chat completions), for tests and demos.

Checks the `Authorization: Bearer` credential the gateway injects, speaks the
chat-completions JSON and SSE formats (usage in the final chunk when
`stream_options.include_usage` is set) and records what reached it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from gateway.demo.stub_anthropic import Seen

STUB_OPENAI_KEY = "stub-openai-key"


class StubOpenAI:
    def __init__(self, api_key: str = STUB_OPENAI_KEY) -> None:
        self.api_key = api_key
        self.reply = "Hello from the stand-in OpenAI model."
        self.requests: list[Seen] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_get("/v1/models", self.models)

    async def _admit(self, request: web.Request) -> bytes | web.Response:
        body = await request.read()
        self.requests.append(
            Seen(request.method, request.path, request.query_string, dict(request.headers), body)
        )
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            err = {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}
            return web.json_response({"error": err}, status=401)
        return body

    async def chat(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        doc = json.loads(admitted)
        words = [w if i == 0 else " " + w for i, w in enumerate(self.reply.split(" "))]
        usage = {
            "prompt_tokens": max(1, len(admitted) // 4),
            "completion_tokens": len(words),
            "total_tokens": max(1, len(admitted) // 4) + len(words),
        }
        base = {"id": "chatcmpl-stub", "created": int(time.time()), "model": doc.get("model")}
        headers = {"x-request-id": "req_openaistub1"}
        if not doc.get("stream"):
            message = {"role": "assistant", "content": "".join(words)}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return web.json_response(
                {**base, "object": "chat.completion", "choices": [choice], "usage": usage},
                headers=headers,
            )
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", **headers})
        await resp.prepare(request)
        chunk = {**base, "object": "chat.completion.chunk"}
        for w in words:
            choice = {"index": 0, "delta": {"content": w}, "finish_reason": None}
            await resp.write(_data({**chunk, "choices": [choice]}))
        done = {"index": 0, "delta": {}, "finish_reason": "stop"}
        await resp.write(_data({**chunk, "choices": [done]}))
        if (doc.get("stream_options") or {}).get("include_usage"):
            await resp.write(_data({**chunk, "choices": [], "usage": usage}))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def models(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        model = {"id": "gpt-5", "object": "model", "created": 0, "owned_by": "stub"}
        return web.json_response({"object": "list", "data": [model]})


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
