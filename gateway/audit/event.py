"""One audit event per request, built from `RequestContext` metadata only.

`FIELDS` is the complete, ordered list of what an event can contain; the
builder reads named context attributes and never the body, the raw model
name, headers or paths. String values that do not come from the gateway's own
tables (key id, team, upstream request id) must match a safe charset or are
recorded as "invalid".
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from typing import Any

from gateway.context import RequestContext

SCHEMA = 1
FIELDS = (
    "audit", "time", "request_id", "key_id", "team", "provider", "upstream", "target",
    "attempts", "endpoint", "model", "stream", "status", "error_type", "reason", "decisions",
    "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
    "bytes_in", "bytes_out", "duration_ms", "ttfb_ms", "upstream_status",
    "upstream_request_id", "stream_error", "pii", "client_ip_hash", "session_id_hash",
)  # fmt: skip
CHAIN_FIELDS = ("chain", "seq", "prev", "hash")
_SAFE = re.compile(r"^[A-Za-z0-9._:/@+=-]{1,128}$")


def _safe(value: str | None) -> str | None:
    if value is None:
        return None
    return value if _SAFE.match(value) else "invalid"


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def iso_time(wall: float) -> str:
    """`datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")`, with the
    date and time of day formatted once per second instead of once per event."""
    frac, whole = math.modf(wall)
    micros = round(frac * 1e6)  # as datetime rounds, carry included
    second = int(whole)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    if _second[0] != second:
        _second[0], _second[1] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_second[1]}.{micros // 1000:03d}+00:00"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def hash_ip(ip: str, key: str) -> str:
    return hmac.new(key.encode(), ip.encode(), hashlib.sha256).hexdigest()[:32]


def hash_value(value: str, key: str) -> str:
    """HMAC-SHA256 of a client-supplied identifier: fixed length, never the value."""
    return hmac.new(key.encode(), value.encode(errors="replace"), hashlib.sha256).hexdigest()[:32]


def build(
    ctx: RequestContext,
    *,
    now: float | None = None,
    ended: float | None = None,
    client_ip_hash: str | None = None,
    session_id_hash: str | None = None,
) -> dict[str, Any]:
    """The event for a finished request. `now` is wall-clock, `ended` monotonic."""
    wall = time.time() if now is None else now
    end = time.monotonic() if ended is None else ended
    route = ctx.route
    principal = ctx.principal
    usage = ctx.usage
    event: dict[str, Any] = {
        "audit": SCHEMA,
        "time": iso_time(wall),
        "request_id": _safe(ctx.request_id),
        "key_id": _safe(principal.key_id) if principal else None,
        "team": _safe(principal.team) if principal else None,
        "provider": route.provider.name if route else None,
        "upstream": route.upstream.name if route else None,
        # The pool target of the last attempt, the one that served it (config name),
        # and the attempts it took; a request that failed upstream records them too.
        "target": ctx.target,
        "attempts": ctx.attempts,
        "endpoint": route.endpoint.kind if route else None,
        # SECURITY: the bounded label, never ctx.model (raw client text).
        "model": ctx.model_label,
        "stream": ctx.stream,
        "status": ctx.status,
        "error_type": ctx.error_type,
        "reason": ctx.error_reason,
        "decisions": list(ctx.decisions),
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "bytes_in": ctx.bytes_in,
        "bytes_out": ctx.bytes_out,
        "duration_ms": _ms(end - ctx.started),
        "ttfb_ms": _ms(ctx.ttfb),
        "upstream_status": ctx.upstream_status,
        "upstream_request_id": _safe(ctx.upstream_request_id),
        "stream_error": ctx.stream_error,
        # Values replaced per category: counts only (category names are the gateway's).
        "pii": dict(ctx.pii_counts) if ctx.pii_counts else None,
    }
    if client_ip_hash is not None:
        event["client_ip_hash"] = client_ip_hash
    if session_id_hash is not None:
        event["session_id_hash"] = session_id_hash
    return event
