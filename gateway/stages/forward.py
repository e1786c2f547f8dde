"""The forward stage: the upstream call, streamed back to the client chunk by chunk.

The upstream attempts (target choice, retries before the first byte, the
breaker's verdicts) are `stages.attempts`; this module relays the answer.
Bodies flow through `StreamResponse.write` and nowhere else. Each upstream
chunk is written as soon as it arrives (no buffering); the provider's usage
reader looks at the same bytes in passing to count tokens. When the pseudonymise
stage made placeholders, a stream's chunks pass through the `StreamRestorer`
(which holds back only a possible placeholder prefix) and a JSON answer is read
whole, restored and sent with its new length.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from urllib.parse import urlencode

from aiohttp import web
from multidict import CIMultiDict

from gateway import SERVER_NAME
from gateway.auth.scopes import model_allowed
from gateway.context import RequestContext
from gateway.errors import UpstreamError
from gateway.http1 import ClientError
from gateway.pii.eventstream import EVENT_STREAM, EventStreamRestorer
from gateway.pii.restore import Originals, restore_json
from gateway.pii.stream import RestoreError, StreamRestorer
from gateway.providers import Provider
from gateway.providers.base import UsageReader
from gateway.providers.cloud import Call, Exchange, Local, UpstreamResponse, refused_for_logging
from gateway.providers.models import MAX_LIST_BYTES, filter_model_list
from gateway.routing.router import Route
from gateway.routing.target import Target
from gateway.stages import attempts
from gateway.stages.observe import CLIENT_CLOSED
from gateway.state import CONFIG, CTX, LOAD, METRICS, RATELIMIT

# A body at most this large, already received whole, is written without waiting: below
# aiohttp's write buffer limit a write never waits for the client to drain.
WHOLE_BODY_MAX = 64 * 1024
_NO_DEADLINE = contextlib.nullcontext()
# The largest JSON answer read whole to put originals back (JSONUsage's cap).
RESTORE_JSON_MAX = 64 << 20


class _WholeBodyResponse(web.StreamResponse):
    """A response whose headers go out with the first body bytes, in one write.

    aiohttp sends a StreamResponse's headers as soon as it is prepared, and holds
    web.Response's until the body is written (`_send_headers_immediately`). A JSON answer
    is useless to a client before its body, so it is relayed like web.Response: one
    packet and one system call fewer. An event stream keeps the immediate headers.
    """

    _send_headers_immediately = False


# Every `kind` of zdr_gateway_upstream_errors_total: the client's failure kinds, and a
# timeout. In a stream, a failure is also a stream error of type `upstream_<kind>`.
UPSTREAM_ERROR_KINDS = ("connect", "tls", "protocol", "reset", "timeout")


async def handle(request: web.Request) -> web.StreamResponse:
    ctx = request[CTX]
    route = ctx.route
    assert route is not None
    upstream = route.upstream
    metrics = request.app[METRICS]
    principal = ctx.principal
    allowed = (
        upstream.restriction(principal.team, principal.upstream_labels)
        if principal is not None
        else upstream.restriction(None, None)
    )
    call = skip = None
    if upstream.has_cloud:
        # Cloud targets translate and sign the parsed request per attempt (cloud.py); one
        # whose account logs invocations is skipped, by policy (posture shows why).
        call = _call(route, request, ctx)
        policy = request.app[CONFIG].policy
        skip = [
            t
            for t in upstream.targets
            if t.cloud is not None
            and refused_for_logging(
                t.cloud.logging_state(), policy.provider_logging, policy.provider_logging_unknown
            )
        ]
    sent = time.monotonic()
    body = _body(ctx)
    # PERF: the parsed document is not needed once the bytes to send exist; dropping it
    # now frees its copy of the text (as large as the body) for the whole upstream call
    # (a cloud target's `call` keeps what its translation needs).
    ctx.json = None
    outbound = (request.method, _target(route, request), _request_headers(route, ctx), body)
    resp, target, exchange = await attempts.send(
        upstream, metrics, allowed, outbound, ctx, call, skip
    )
    # An upstream has answered, so no attempt is left to make: the body is not held while
    # the response streams (minutes, for a long generation), and its budget is given back.
    del body, outbound, call
    ctx.body = b""
    if ctx.held_bytes:
        request.app[LOAD].release(ctx.held_bytes)
        ctx.held_bytes = 0
    if isinstance(resp, Local):
        if route.upstream_path == "/v1/models" and principal and principal.models is not None:
            # A cloud target's model list, made by the gateway: cut to the key's scopes too.
            scopes = principal.models
            body = filter_model_list(resp.body, lambda m: model_allowed(scopes, m))
            resp = Local(resp.status, body if body is not None else resp.body)
        return _local(resp, ctx)
    try:
        principal = ctx.principal
        if (
            route.endpoint.kind == "models"
            and principal is not None
            and principal.models is not None
            and resp.status == 200
        ):
            return await _relay_model_list(request, ctx, route, resp, principal.models, target)
        return await _relay(request, ctx, route, resp, target, exchange)
    finally:
        # A complete response returns its connection to the pool; anything else
        # (client gone, upstream failure, cancellation) closes it, which ends the
        # upstream request at once.
        resp.release()
        metrics.upstream_duration.labels(route.provider.name, route.endpoint.kind).observe(
            time.monotonic() - sent
        )


async def _relay(
    request: web.Request,
    ctx: RequestContext,
    route: Route,
    resp: UpstreamResponse,
    target: Target,
    exchange: Exchange | None,
) -> web.StreamResponse:
    provider = route.provider
    metrics = request.app[METRICS]
    ctx.upstream_status = resp.status
    ctx.upstream_request_id = provider.upstream_request_id(resp.headers)
    event_stream = resp.content_type == "text/event-stream"
    own_ratelimit = RATELIMIT in request.app
    headers = provider.forward_response_headers(resp.headers, own_ratelimit)
    headers["Server"] = SERVER_NAME
    headers["x-gateway-request-id"] = ctx.request_id
    headers.update(ctx.extra_headers)
    response_class = web.StreamResponse if event_stream else _WholeBodyResponse
    out = response_class(status=resp.status, headers=headers)
    reader = provider.usage_reader(event_stream) if resp.status < 300 else None
    if exchange is not None:
        reader = exchange.usage_reader(reader)
    originals: Originals | None = ctx.pii if resp.status < 300 else None
    restorer: StreamRestorer | EventStreamRestorer | None = None
    if originals is not None:
        if resp.content_type == EVENT_STREAM:
            # Bedrock's own stream, passed to a cloud-native client frame by frame.
            restorer = EventStreamRestorer(originals)
        elif not event_stream:
            return await _restored_json(request, ctx, route, resp, out, reader, originals)
        else:
            restorer = StreamRestorer(originals, provider.name)
    if resp.content_length is not None and not event_stream and restorer is None:
        out.content_length = resp.content_length
    await out.prepare(request)
    gap = metrics.chunk_gap.labels(provider.name)
    idle = route.upstream.settings.timeouts.idle
    # Moving a timer costs a heap operation; moving it at most every `idle / 8` keeps
    # the deadline within 12.5 % of exact at a fraction of the cost per chunk.
    step = idle / 8
    loop = asyncio.get_running_loop()
    pushed = loop.time()
    last = 0.0
    # One deadline, pushed forward as chunks flow: the relay must make progress every
    # `idle` seconds, whether the upstream stalls or the client stops reading. A small
    # body already in whole cannot stall either way, so it needs no timer.
    whole = resp.complete and resp.buffered <= WHOLE_BODY_MAX
    try:
        async with _NO_DEADLINE if whole else asyncio.timeout(idle) as deadline:
            async for chunk in resp:
                now = time.monotonic()
                if last:
                    gap.observe(now - last)
                else:
                    ctx.ttfb = now - ctx.started
                last = now
                if restorer is None:
                    await out.write(chunk)
                    ctx.bytes_out += len(chunk)
                else:
                    data = restorer.feed(chunk)
                    if data:
                        await out.write(data)
                        ctx.bytes_out += len(data)
                if reader is not None:
                    reader.feed(chunk)
                if deadline is None:
                    continue
                now_loop = loop.time()
                if now_loop - pushed > step:
                    deadline.reschedule(now_loop + idle)
                    pushed = now_loop
            if restorer is not None:
                data = restorer.finish()
                if data:
                    await out.write(data)
                    ctx.bytes_out += len(data)
    except RestoreError:
        ctx.stream_error = "pii_restore"
        await _abort(request, out, provider, ctx, event_stream)
        return out
    except (ClientError, ConnectionError, TimeoutError) as exc:
        if request.transport is None or request.transport.is_closing():
            # The client went away (a write to it failed): not an upstream failure.
            ctx.status, ctx.error_type = CLIENT_CLOSED, "client_closed"
            return out
        if isinstance(exc, ClientError):
            kind = exc.kind
        else:
            kind = "timeout" if isinstance(exc, TimeoutError) else "reset"
        metrics.upstream_errors.labels(route.upstream.name, kind).inc()
        # After the first byte nothing is re-sent; the target's breaker hears of it.
        target.breaker.failure(route.upstream.pool.clock())
        ctx.stream_error = f"upstream_{kind}"
        await _abort(request, out, provider, ctx, event_stream)
        return out
    finally:
        if reader is not None:
            reader.finish()
            ctx.usage = reader.usage
            if reader.stream_error and not ctx.stream_error:
                ctx.stream_error = reader.stream_error
    await out.write_eof()
    return out


async def _restored_json(
    request: web.Request,
    ctx: RequestContext,
    route: Route,
    resp: UpstreamResponse,
    out: web.StreamResponse,
    reader: UsageReader | None,
    originals: Originals,
) -> web.StreamResponse:
    """A JSON answer with placeholders: read whole (it is useless to a client before its
    end anyway), originals put back, sent with its new length."""

    def seen(chunk: bytes) -> None:
        if ctx.ttfb is None:
            ctx.ttfb = time.monotonic() - ctx.started
        if reader is not None:
            reader.feed(chunk)

    too_large = "The upstream answer is too large to restore."
    try:
        whole = await _read_whole(resp, RESTORE_JSON_MAX, too_large, route, seen)
    except (ClientError, ConnectionError, TimeoutError):
        request.app[METRICS].upstream_errors.labels(route.upstream.name, "protocol").inc()
        raise UpstreamError(attempts.FAILED["protocol"]) from None
    finally:
        if reader is not None:
            reader.finish()
            ctx.usage = reader.usage
    body = restore_json(whole, originals)
    out.content_length = len(body)
    await out.prepare(request)
    await out.write(body)
    ctx.bytes_out += len(body)
    await out.write_eof()
    return out


async def _read_whole(
    resp: UpstreamResponse,
    cap: int,
    too_large: str,
    route: Route,
    seen: Callable[[bytes], None] | None = None,
) -> bytes:
    """A small answer read whole (a restored JSON answer, a model list): UpstreamError
    past `cap` bytes; all of it within the upstream's `timeouts.idle` seconds."""
    parts: list[bytes] = []
    size = 0
    async with asyncio.timeout(route.upstream.settings.timeouts.idle):
        async for chunk in resp:
            size += len(chunk)
            if size > cap:
                raise UpstreamError(too_large)
            parts.append(chunk)
            if seen is not None:
                seen(chunk)
    return b"".join(parts)


async def _relay_model_list(
    request: web.Request,
    ctx: RequestContext,
    route: Route,
    resp: UpstreamResponse,
    scopes: tuple[str, ...],
    target: Target,
) -> web.StreamResponse:
    """A model list (small, read whole) cut to the key's model scopes."""
    ctx.upstream_status = resp.status
    ctx.upstream_request_id = route.provider.upstream_request_id(resp.headers)
    too_large = "The upstream API's model list is too large."
    try:
        whole = await _read_whole(resp, MAX_LIST_BYTES, too_large, route)
    except (ClientError, ConnectionError, TimeoutError):
        request.app[METRICS].upstream_errors.labels(route.upstream.name, "reset").inc()
        target.breaker.failure(route.upstream.pool.clock())
        raise UpstreamError(attempts.FAILED["protocol"]) from None
    body: bytes | None = whole
    if route.upstream_path == "/v1/models":
        body = filter_model_list(whole, lambda m: model_allowed(scopes, m))
    # else /v1/models/{id}: the scopes stage already checked the id
    if body is None:
        raise UpstreamError("The upstream API's model list could not be read.")
    headers = route.provider.forward_response_headers(resp.headers, RATELIMIT in request.app)
    headers["Server"] = SERVER_NAME
    headers["x-gateway-request-id"] = ctx.request_id
    headers.update(ctx.extra_headers)
    headers["content-type"] = "application/json"
    ctx.bytes_out = len(body)
    return web.Response(status=200, body=body, headers=headers)


async def _abort(
    request: web.Request,
    out: web.StreamResponse,
    provider: Provider,
    ctx: RequestContext,
    event_stream: bool,
) -> None:
    """The upstream failed after the status was sent: tell the client it is incomplete."""
    if event_stream:
        # An SSE client (the SDKs) raises on `event: error`, as for a provider's own.
        data = provider.error_body(
            "api_error", "The upstream stream ended unexpectedly.", ctx.request_id
        )
        try:
            await out.write(b"event: error\ndata: " + data + b"\n\n")
            await out.write_eof()
            return
        except ConnectionError:
            pass
    # A JSON body cannot carry an error once started: cut the connection so the
    # client sees a truncated response instead of a clean end.
    if request.transport is not None:
        request.transport.abort()


def _call(route: Route, request: web.Request, ctx: RequestContext) -> Call:
    allowed = route.provider.query_params
    query = [(k, v) for k, v in request.query.items() if k in allowed]
    body = _body(ctx) or b""
    headers = ctx.forward_headers
    return Call(
        request.method, route.upstream_path, route.endpoint.kind, query, headers, body, ctx.json,
        ctx.stream,
    )  # fmt: skip


def _local(local: Local, ctx: RequestContext) -> web.StreamResponse:
    """A cloud client's probe, answered by the gateway (nothing forwarded)."""
    ctx.upstream_status = None
    out = web.Response(status=local.status, body=local.body, content_type=local.content_type)
    out.headers["Server"] = SERVER_NAME
    out.headers["x-gateway-request-id"] = ctx.request_id
    out.headers.update(ctx.extra_headers)
    return out


def _target(route: Route, request: web.Request) -> str:
    target = route.upstream_path
    allowed = route.provider.query_params
    if request.query_string:
        # Only known parameters pass; anything else (a credential, say) is dropped.
        kept = [(k, v) for k, v in request.query.items() if k in allowed]
        if kept:
            target += "?" + urlencode(kept)
    return target


def _request_headers(route: Route, ctx: RequestContext) -> CIMultiDict[str]:
    out = ctx.forward_headers
    # SECURITY: client credentials never pass the allow-list; the chosen target's adapter
    # adds its own (gateway/routing/target.py) without changing these headers.
    if route.endpoint.json_body:
        out["content-type"] = "application/json"
    return out


def _body(ctx: RequestContext) -> bytes | bytearray | None:
    if ctx.body_rewritten and ctx.json is not None:
        return json.dumps(ctx.json, separators=(",", ":")).encode()
    return ctx.body or None
