"""The body stage: read the request body (capped, in memory only) and parse it once.

Every byte held is first reserved in the process's body budget
(`server.limits.body_memory_bytes`): a request whose Content-Length does not fit
is shed with 529 before a byte of it is read, and a chunked body at the moment it
grows past what is left. Before parsing, the reservation grows to the body's
estimated parsed cost (`jsonbody.held_cost`). The reservation is given back when the body is dropped
(forward, once the upstream has it; or the chain, when the request ends).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway import jsonbody
from gateway.context import RequestContext
from gateway.errors import InvalidRequest, RequestTimeout, RequestTooLarge, UnsupportedMediaType
from gateway.serve.load import Load
from gateway.state import CONFIG, LABELS, LOAD, METRICS


async def body_stage(request: web.Request, ctx: RequestContext) -> None:
    assert ctx.route is not None
    if not ctx.route.endpoint.json_body:
        return
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json.")
    app = request.app
    server = app[CONFIG].server
    load = app[LOAD]
    body = await _read_capped(request, ctx, load, server.max_body_bytes)
    ctx.body = body
    ctx.bytes_in = len(body)
    # SECURITY: what parsing will cost is reserved before it is paid: a 3-byte `{},`
    # becomes a 64-byte dict, so the bytes alone would understate it twentyfold.
    cost, containers = jsonbody.held_cost(body)
    if cost > ctx.held_bytes:
        _hold(ctx, load, cost - ctx.held_bytes)
    doc = jsonbody.parse(body, server.limits.max_json_depth, containers)
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
    stream = doc.get("stream") is True
    adapter = ctx.route.upstream.native
    if model is None and adapter is not None:
        # A cloud-native client names the model (and streaming) in the path.
        path_model, path_stream = adapter.path_model(ctx.route.upstream_path)
        if path_model is not None:
            model, stream = path_model, stream or path_stream
    ctx.json = doc
    ctx.model = model
    ctx.model_label = app[LABELS].model(model)
    ctx.stream = stream


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"Request body exceeds the gateway's limit of {limit} bytes.")


def _hold(ctx: RequestContext, load: Load, size: int) -> None:
    """Reserve `size` more bytes for this request, or shed it."""
    # SECURITY: the budget bounds what all requests together make the process hold.
    if not load.budget.reserve(size):
        if ctx.held_bytes + size > load.budget.limit:
            # It would not fit an idle process either: retrying cannot help.
            raise RequestTooLarge(
                "Request body is too large for the gateway's memory budget once parsed.",
                reason="too_large_parsed",
            )
        raise load.overloaded("body_budget")
    ctx.held_bytes += size
    load.held_gauge.inc(size)


async def _read_capped(
    request: web.Request, ctx: RequestContext, load: Load, limit: int
) -> bytes | bytearray:
    content = request.content
    length = request.content_length
    if content.is_eof():
        # The whole body came with the headers (the common case for API calls): no
        # waiting, so no timer; and it is in memory already (at most aiohttp's read
        # buffer), so its one reservation, at its parsed cost, is made by the caller.
        body = content.read_nowait()
        if len(body) > limit:
            raise _too_large(limit)
        return body
    if length is not None:
        # The route stage refused an over-long Content-Length; a short one is checked
        # below against what arrives. Reserved before any byte is read: the least the
        # body costs while parsed (3x: jsonbody.held_cost); the rest once it is seen.
        _hold(ctx, load, 3 * length)
    # PERF: with a Content-Length the body is written into one buffer of that size as it
    # arrives; collecting chunks and joining them held it twice at the end.
    buf = bytearray(length) if length is not None and length <= limit else bytearray()
    size = 0
    try:
        async with asyncio.timeout(request.app[CONFIG].server.timeouts.body):
            async for chunk in content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                if length is None:
                    _hold(ctx, load, len(chunk))  # chunked: shed the moment it outgrows
                    buf += chunk
                else:
                    buf[size - len(chunk) : size] = chunk
    except TimeoutError:
        request.app[METRICS].connection_timeouts.labels("body").inc()
        raise RequestTimeout("The request body did not arrive in time.") from None
    if length is not None and size < length:
        del buf[size:]  # the client closed early; aiohttp raises before this, kept for safety
    return buf
