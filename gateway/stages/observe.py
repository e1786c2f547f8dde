"""Observe: the request id, and once the response is over, metrics, the audit event and
the access log line, all from metadata in the RequestContext (never content). The
chain runner (gateway/chain.py) calls these around every request."""

from __future__ import annotations

import logging
import os
import time

from aiohttp import web

from gateway.context import RequestContext
from gateway.state import ACCESS_LOG, AUDIT, LABELS, METRICS

log = logging.getLogger("gateway.access")
# nginx's convention for "client closed the connection before the response ended".
CLIENT_CLOSED = 499


def new_request_id() -> str:
    return "gw_" + os.urandom(12).hex()


def record(request: web.Request, ctx: RequestContext) -> None:
    app = request.app
    metrics = app[METRICS]
    duration = time.monotonic() - ctx.started
    route = ctx.route
    provider = route.provider.name if route else "none"
    kind = route.endpoint.kind if route else "unknown"
    team = app[LABELS].team(ctx.principal.team if ctx.principal else None)
    status = ctx.status
    metrics.requests.labels(provider, kind, f"{status // 100}xx", str(status), team).inc()
    metrics.request_duration.labels(provider, kind).observe(duration)
    if ctx.ttfb is not None:
        metrics.ttfb.labels(provider, kind).observe(ctx.ttfb)
    if ctx.bytes_in:
        metrics.request_bytes.labels(provider, kind).inc(ctx.bytes_in)
    if ctx.bytes_out:
        metrics.response_bytes.labels(provider, kind).inc(ctx.bytes_out)
    for token_kind, count in ctx.usage.by_kind().items():
        if count:
            metrics.tokens.labels(provider, ctx.model_label, token_kind, team).inc(count)
    if ctx.stream_error:
        metrics.stream_errors.labels(provider, ctx.stream_error).inc()
    if app[ACCESS_LOG]:
        _access_line(ctx, provider, kind, team, duration)
    # Claude Code's session id: hashed in the audit event when audit.session_id is hashed.
    session = request.headers.get("x-claude-code-session-id")
    app[AUDIT].emit(ctx, client_ip=request.remote, session_id=session)


def _access_line(ctx: RequestContext, provider: str, kind: str, team: str, duration: float) -> None:
    log.info(
        "request",
        extra={
            "request_id": ctx.request_id,
            "provider": provider,
            "endpoint": kind,
            "status": ctx.status,
            "error_type": ctx.error_type,
            "reason": ctx.error_reason,
            "key_id": ctx.principal.key_id if ctx.principal else None,
            "team": team,
            "model": ctx.model_label,
            "duration_ms": round(duration * 1000, 3),
            "ttfb_ms": None if ctx.ttfb is None else round(ctx.ttfb * 1000, 3),
            "bytes_in": ctx.bytes_in,
            "bytes_out": ctx.bytes_out,
            "input_tokens": ctx.usage.input_tokens,
            "output_tokens": ctx.usage.output_tokens,
            "upstream_request_id": ctx.upstream_request_id,
        },
    )
