"""The body stage: read the request body (capped, in memory only) and parse it once."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from gateway.context import RequestContext
from gateway.errors import InvalidRequest, RequestTimeout, RequestTooLarge, UnsupportedMediaType
from gateway.state import CONFIG, LABELS


async def body_stage(request: web.Request, ctx: RequestContext) -> None:
    assert ctx.route is not None
    if not ctx.route.endpoint.json_body:
        return
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json.")
    server = request.app[CONFIG].server
    body = await _read_capped(request, server.max_body_bytes, server.client_timeout_seconds)
    ctx.body = body
    ctx.bytes_in = len(body)
    try:
        doc = json.loads(body)
    except ValueError:
        # SECURITY: the parser's message quotes the body; it is not passed on.
        raise InvalidRequest("Request body is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    model = doc.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("`model` must be a string.")
    caps = ctx.route.provider.output_cap_fields.get(ctx.route.endpoint.kind, ())
    given = [name for name in caps if doc.get(name) is not None]
    if len(given) > 1:
        # SECURITY: one cap is checked against the key's ceiling; two could disagree.
        raise InvalidRequest(f"Give only one of {', '.join(f'`{n}`' for n in given)}.")
    if given:
        value = doc[given[0]]
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRequest(f"`{given[0]}` must be an integer.")
        ctx.max_tokens, ctx.max_tokens_field = value, given[0]
    ctx.json = doc
    ctx.model = model
    ctx.model_label = request.app[LABELS].model(model)
    ctx.stream = doc.get("stream") is True


async def _read_capped(request: web.Request, limit: int, seconds: float) -> bytes:
    content = request.content
    if content.is_eof():
        # The whole body came with the headers (the common case for API calls): no
        # waiting, so no timer. The route stage already refused an over-long
        # Content-Length; this checks what actually arrived.
        body = content.read_nowait()
        if len(body) > limit:
            raise RequestTooLarge(f"Request body exceeds the gateway's limit of {limit} bytes.")
        return body
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise RequestTooLarge(
                        f"Request body exceeds the gateway's limit of {limit} bytes."
                    )
                parts.append(chunk)
    except TimeoutError:
        raise RequestTimeout("The request body did not arrive in time.") from None
    return b"".join(parts)
