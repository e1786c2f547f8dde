"""The forward stage's upstream attempts: choose a target, send, retry before the first byte.

Called by `stages.forward` once per request; returns the response whose head
is in (nothing of it has gone to the client yet) and the target that gave it.
A request is retried only here, so only before the client has seen a byte:

- retried: connect failure or connect timeout, TLS failure, reset before the
  response head, and an upstream status in `retry.statuses` (429, 502, 503,
  529 by default); on another eligible target when there is one, else on the
  same one after its `retry-after` (up to `max_retry_after_seconds`; longer:
  not retried) or `backoff_seconds`.
- not retried: a first-byte timeout or a malformed response (the upstream may
  be running the request: a second one would be billed twice); a request the
  gateway refuses to send (`UnsafeRequest`).
- bounded: `retry.max_attempts` per request, and the upstream's retry budget
  across requests. When either runs out, the last answer goes to the client as
  the upstream gave it, or the last failure as today's 502/504.

The rate limiter admitted the request once, before this stage: attempts do not
pass through it again. Each attempt's breaker slot is either settled (success,
failure) or released (cancelled), never left taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from multidict import CIMultiDict

from gateway.context import RequestContext
from gateway.errors import GatewayError, InvalidRequest, Unavailable, UpstreamError, UpstreamTimeout
from gateway.http1 import ClientError, ConnectTimeout, Response, UnsafeRequest
from gateway.observe.metrics import Metrics
from gateway.routing.pool import Restriction
from gateway.routing.target import Target
from gateway.routing.upstream import Upstream

# The client's message per upstream failure kind; any other kind (reset) gets "protocol"'s.
FAILED = {
    "tls": "The upstream API's TLS certificate could not be verified.",
    "connect": "Could not connect to the upstream API.",
    "protocol": "The upstream API request failed.",
}
_RETRIED_KINDS = frozenset(("connect", "tls", "reset"))
NO_TARGET = "No upstream target allowed for this request is available; try again later."


def no_target(upstream: Upstream, metrics: Metrics) -> GatewayError:
    metrics.upstream_unavailable.labels(upstream.name).inc()
    return Unavailable(NO_TARGET, reason="no_upstream_target")


async def send(
    upstream: Upstream,
    metrics: Metrics,
    allowed: Restriction,
    request: tuple[str, str, CIMultiDict[str], bytes | bytearray | None],
    ctx: RequestContext,
) -> tuple[Response, Target]:
    """(response with its head in, the target that gave it). `ctx.target` and
    `ctx.attempts` follow the attempts, so a request that fails still records them."""
    pool = upstream.pool
    target = pool.choose(allowed)
    if target is None:
        raise no_target(upstream, metrics)
    pool.budget.request(pool.clock())
    tried: list[Target] = []
    while True:
        tried.append(target)
        ctx.target, ctx.attempts = target.name, len(tried)
        resp, failure, outcome = await _attempt(upstream, target, request)
        target.outcomes[outcome].inc()
        if failure is None and outcome != "retryable_status":
            assert resp is not None
            return resp, target
        nxt = _next(upstream, metrics, allowed, tried, resp, failure)
        if nxt is None:
            if resp is not None:
                return resp, target  # the upstream's answer, as it is
            assert failure is not None
            metrics.upstream_errors.labels(upstream.name, failure[0]).inc()
            raise failure[1]
        if resp is not None:
            resp.release()
        target, wait = nxt
        if wait > 0:
            try:
                await asyncio.sleep(wait)
            except BaseException:
                target.breaker.release()
                raise


async def _attempt(
    upstream: Upstream,
    target: Target,
    request: tuple[str, str, CIMultiDict[str], bytes | bytearray | None],
) -> tuple[Response | None, tuple[str, GatewayError] | None, str]:
    """One attempt: (response, None, outcome) or (None, (kind, error), kind)."""
    method, path, headers, body = target.adapter.outbound(*request)
    breaker = target.breaker
    now = upstream.pool.clock
    try:
        # Bounded by the upstream's connect, first-byte and total timeouts (the client's).
        resp = await target.client.request(method, path, headers, body)
    except ConnectTimeout:
        breaker.failure(now())
        return None, ("connect", UpstreamError(FAILED["connect"])), "connect"
    except TimeoutError:
        breaker.failure(now())
        timeout = UpstreamTimeout("The upstream API did not respond in time.")
        return None, ("timeout", timeout), "timeout"
    except UnsafeRequest:
        breaker.release()
        # SECURITY: a CR, LF or NUL in a header, or a path HTTP cannot carry: refused
        # rather than let it split into a second request upstream (smuggling).
        raise InvalidRequest(
            "The request cannot be forwarded: it contains characters HTTP does not allow.",
            reason="unsafe_request",
        ) from None
    except ClientError as exc:
        breaker.failure(now())
        error = UpstreamError(FAILED.get(exc.kind, FAILED["protocol"]))
        return None, (exc.kind, error), exc.kind
    except BaseException:
        breaker.release()  # cancelled (the client left): no verdict on the target
        raise
    status = resp.status
    if status >= 500:
        breaker.failure(now())
        return (
            resp,
            None,
            "retryable_status" if status in upstream.retry_statuses else "server_error",
        )
    if status in upstream.retry_statuses:
        # A 429 (or another retried 4xx): the target is up and asks to slow down. It is
        # retried elsewhere, but no verdict for the breaker, as in Envoy's outlier
        # detection: an open breaker would turn the provider's 429 into our 503.
        breaker.release()
        return resp, None, "retryable_status"
    breaker.success()
    return resp, None, "success" if status < 400 else "client_error"


def _next(
    upstream: Upstream,
    metrics: Metrics,
    allowed: Restriction,
    tried: list[Target],
    resp: Response | None,
    failure: tuple[str, GatewayError] | None,
) -> tuple[Target, float] | None:
    """The target of the next attempt and how long to wait first; None = do not retry."""
    retry = upstream.retry
    if len(tried) >= retry.max_attempts:
        return None
    if failure is not None and failure[0] not in _RETRIED_KINDS:
        return None
    pool = upstream.pool
    wait = 0.0
    target = pool.choose(allowed, tried)  # another target first
    if target is None:
        # Nothing else is eligible: the same one again, after what it asked for.
        after = retry_after(resp.headers.getall("retry-after", ())) if resp is not None else None
        if after is not None and after > retry.max_retry_after_seconds:
            return None
        target = pool.choose(allowed)
        if target is None:
            return None
        wait = retry.backoff_seconds if after is None else after
    if not pool.budget.try_retry(pool.clock()):
        target.breaker.release()
        metrics.retry_budget_exhausted.labels(upstream.name).inc()
        return None
    return target, wait


def retry_after(values: Iterable[str]) -> float | None:
    """Seconds from a `retry-after` header (delta-seconds only; a date is ignored)."""
    for value in values:
        try:
            seconds = float(value.strip())
        except ValueError:
            return None
        return seconds if 0 <= seconds < 86400 else None
    return None
