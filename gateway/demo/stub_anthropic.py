"""A local stand-in for the Anthropic API, for the demo, the tests and the benchmark.

It speaks the real wire format (JSON messages, SSE with message_start /
content_block_* / message_delta / message_stop, provider-shaped errors) on
loopback, checks the upstream credential the gateway injects, and records the
metadata of every request it receives so tests can prove what reached it.

`max_tokens` sets how many text deltas a response has (capped by
`Behaviour.max_events`); `Behaviour` lets a test choose the reply text, the
pacing, failures and pauses.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

STUB_API_KEY = "stub-upstream-key"


@dataclass
class Behaviour:
    reply: str = "Hello from the stand-in model."
    # Bytes of text per delta event; the reply text is repeated/cut to fit.
    delta_bytes: int = 0
    max_events: int = 1_000_000
    event_delay: float = 0.0
    # Error status for the next requests (e.g. 429, 529) with this body text.
    fail_status: int | None = None
    fail_message: str = "Overloaded"
    retry_after: str | None = None
    # Close the connection after this many delta events.
    reset_after: int | None = None
    # Send this many events, then wait until the test sets `resume`.
    pause_after: int | None = None
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    # Seconds to wait before sending the response headers.
    header_delay: float = 0.0
    # Send `event: error` (overloaded) after the deltas, instead of message_stop.
    stream_error: bool = False
    # Extra response headers on /v1/messages (e.g. the provider's own rate-limit headers).
    headers: dict[str, str] = field(default_factory=dict)
    # Answer a streamed request whose last message carries no tool_result with this tool
    # call ({"name": ..., "input": {...}}), and the tool's result with the reply text:
    # a client's tool-use round trip (Claude Code runs the tool and sends tool_result).
    tool_use: dict[str, Any] | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class StubUpstream:
    def __init__(self, api_key: str = STUB_API_KEY, record: bool = True) -> None:
        self.api_key = api_key
        self.behaviour = Behaviour()
        self.record = record
        self.requests: list[Seen] = []
        # sha256 (hex, 16) of each x-api-key received: which credential arrived, unstored.
        self.key_hashes: list[str] = []
        self.disconnects = 0
        self.app = web.Application(client_max_size=32 * 1024 * 1024)  # the real API takes 32 MB
        self.app.router.add_post("/v1/messages", self.messages)
        self.app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        self.app.router.add_get("/v1/models", self.models)
        self.app.router.add_get("/v1/models/{model_id}", self.model)
        self.app.router.add_route("*", "/{tail:.*}", self.anything)

    async def _admit(self, request: web.Request) -> bytes | web.Response:
        body = await request.read()
        if self.record:
            key = request.headers.get("x-api-key", "")
            self.key_hashes.append(hashlib.sha256(key.encode()).hexdigest()[:16])
            self.requests.append(
                Seen(
                    request.method, request.path, request.query_string, dict(request.headers), body
                )
            )
        if request.headers.get("x-api-key") != self.api_key:
            return _error(401, "authentication_error", "invalid x-api-key")
        b = self.behaviour
        if b.header_delay:
            await asyncio.sleep(b.header_delay)
        if b.fail_status is not None:
            headers = {"retry-after": b.retry_after} if b.retry_after else {}
            kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(
                b.fail_status, "api_error"
            )
            return _error(b.fail_status, kind, b.fail_message, headers)
        return body

    async def messages(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        doc = json.loads(admitted)
        model = str(doc.get("model", "claude-stub"))
        events = self._events(int(doc.get("max_tokens", 16)))
        input_tokens = max(1, len(admitted) // 4)
        if doc.get("stream"):
            if self.behaviour.tool_use is not None and not _answers_tool(doc):
                return await self._stream_tool_use(request, model, self.behaviour.tool_use)
            return await self._stream(request, model, events, input_tokens)
        text = "".join(self._delta(i) for i in range(events))
        return web.json_response(
            {
                "id": "msg_stub",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": events},
            },
            headers={
                "request-id": "req_stub0001",
                "anthropic-organization-id": "org_stub_private",
                **self.behaviour.headers,
            },
        )

    def _events(self, max_tokens: int) -> int:
        """One text delta per word of the reply, or `max_tokens` fixed-size deltas."""
        b = self.behaviour
        wanted = max_tokens if b.delta_bytes else len(self._words())
        return max(1, min(wanted, max_tokens, b.max_events))

    def _words(self) -> list[str]:
        words = self.behaviour.reply.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def _delta(self, i: int) -> str:
        b = self.behaviour
        if not b.delta_bytes:
            words = self._words()
            return words[i] if i < len(words) else ""
        return (b.reply * (b.delta_bytes // max(1, len(b.reply)) + 1))[: b.delta_bytes]

    async def _stream(
        self, request: web.Request, model: str, events: int, input_tokens: int
    ) -> web.StreamResponse:
        b = self.behaviour
        resp = web.StreamResponse(
            headers={
                "content-type": "text/event-stream",
                "request-id": "req_stub0002",
                **b.headers,
            }
        )
        await resp.prepare(request)
        try:
            message: dict[str, Any] = {
                "id": "msg_stub",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            }
            await resp.write(_sse("message_start", {"type": "message_start", "message": message}))
            await resp.write(
                _sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for i in range(events):
                if b.reset_after is not None and i >= b.reset_after:
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
                if b.pause_after is not None and i == b.pause_after:
                    await b.resume.wait()
                if b.event_delay:
                    await asyncio.sleep(b.event_delay)
                text = self._delta(i)
                delta = {"type": "text_delta", "text": text}
                await resp.write(
                    _sse(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": 0, "delta": delta},
                    )
                )
            await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
            if b.stream_error:
                err = {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}
                await resp.write(_sse("error", err))
                return resp
            await resp.write(
                _sse(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                        "usage": {"output_tokens": events},
                    },
                )
            )
            await resp.write(_sse("message_stop", {"type": "message_stop"}))
            await resp.write_eof()
        except (asyncio.CancelledError, ConnectionError):
            self.disconnects += 1
            raise
        return resp

    async def _stream_tool_use(
        self, request: web.Request, model: str, call: dict[str, Any]
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        usage = {"input_tokens": 10, "output_tokens": 1}
        message = {"id": "msg_stub_tool", "type": "message", "role": "assistant", "model": model}
        block = {"type": "tool_use", "id": "toolu_stub01", "name": call["name"], "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(call["input"])}
        for event, data in (
            ("message_start", {"message": {**message, "content": [], "usage": usage}}),
            ("content_block_start", {"index": 0, "content_block": block}),
            ("content_block_delta", {"index": 0, "delta": delta}),
            ("content_block_stop", {"index": 0}),
            (
                "message_delta",
                {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}},
            ),
            ("message_stop", {}),
        ):
            await resp.write(_sse(event, {"type": event, **data}))
        await resp.write_eof()
        return resp

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        return web.json_response({"input_tokens": max(1, len(admitted) // 4)})

    async def models(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        data = [_model("claude-sonnet-5-5"), _model("claude-haiku-5-5")]
        return web.json_response(
            {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        )

    async def model(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        return web.json_response(_model(request.match_info["model_id"]))

    async def anything(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request)
        if isinstance(admitted, web.Response):
            return admitted
        return web.json_response({"id": "stub_object", "type": "stub"})


def _answers_tool(doc: dict[str, Any]) -> bool:
    """Whether the last message carries a tool_result (the client ran the tool)."""
    messages = doc.get("messages") or [{}]
    content = messages[-1].get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def _model(model_id: str) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model_id,
        "display_name": model_id,
        "created_at": "2025-01-01T00:00:00Z",
    }


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_e1"}
    return web.json_response(body, status=status, headers=headers)
