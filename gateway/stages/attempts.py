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

Targets of one pool may be of mixed providers: an Anthropic target's attempt is
its adapter's `outbound` on the request's bytes; a cloud target's (Bedrock,
Vertex) is `cloud.prepare(call)`, signed per attempt, and its answer is the
adapter's translation (`exchange.response`), so statuses are judged, retried
and relayed in Anthropic's terms whichever target gave them. Targets in `skip`
(a cloud account that logs invocations, refused by policy) are never chosen.

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
from gateway.http1 import ClientError, ConnectTimeout, UnsafeRequest
from gateway.observe.metrics import Metrics
from gateway.providers.cloud import Call, Exchange, Local, UpstreamResponse
from gateway.routing.pool import Restriction, matches
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
LOGGING = (
    "The upstream's cloud account logs model invocations (or its setting is unknown); "
    "the gateway's policy does not send requests there."
)
Request = tuple[str, str, CIMultiDict[str], bytes | bytearray | None]


def no_target(upstream: Upstream, metrics: Metrics) -> GatewayError:
    metrics.upstream_unavailable.labels(upstream.name).inc()
    return Unavailable(NO_TARGET, reason="no_upstream_target")


async def send(
    upstream: Upstream,
    metrics: Metrics,
    allowed: Restriction,
    request: Request,
    ctx: RequestContext,
    call: Call | None = None,
    skip: list[Target] | None = None,
) -> tuple[UpstreamResponse | Local, Target, Exchange | None]:
    """(response with its head in, the target that gave it, its cloud exchange if any);
    a `Local` instead of a response: a cloud client's probe, answered without sending.
    `ctx.target` and `ctx.attempts` follow the attempts, so a failed request records them.
    `call` is the parsed request (needed when the pool has a cloud target)."""
    pool = upstream.pool
    skipped = skip or []
    target = pool.choose(allowed, skipped)
    if target is None:
        # Refused for logging only when every target the request may use was skipped
        # for it (an open breaker elsewhere is the usual no_upstream_target).
        usable = [t for t in upstream.targets if not allowed or matches(t.labels, allowed)]
        if usable and all(t in skipped for t in usable):
            # SECURITY: provider-side retention outside the gateway's reach (posture shows it).
            raise Unavailable(
                LOGGING, reason="provider_logging", headers={"x-should-retry": "false"}
            )
        raise no_target(upstream, metrics)
    pool.budget.request(pool.clock())
    tried: list[Target] = []
    while True:
        tried.append(target)
        ctx.target, ctx.attempts = target.name, len(tried)
        resp, failure, outcome, exchange = await _attempt(upstream, target, request, call)
        if exchange is not None and exchange.local is not None:
            return exchange.local, target, exchange
        target.outcomes[outcome].inc()
        if failure is None and outcome != "retryable_status":
            assert resp is not None
            return resp, target, exchange
        nxt = _next(upstream, metrics, allowed, tried, skipped, resp, failure)
        if nxt is None:
            if resp is not None:
                return resp, target, exchange  # the upstream's answer, as it is
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


def _prepare(
    target: Target, request: Request, call: Call | None
) -> tuple[tuple[str, str, Iterable[tuple[str, str]], bytes | bytearray | None], Exchange | None]:
    cloud = target.cloud
    if cloud is None:
        return target.adapter.outbound(*request), None
    assert call is not None
    try:
        # Signed per attempt (a retry elsewhere prepares again: signatures are per request).
        exchange = cloud.prepare(call)
    except BaseException:
        target.breaker.release()  # refused before sending: no verdict on the target
        raise
    return (exchange.method, exchange.target, exchange.headers, exchange.body), exchange


async def _attempt(
    upstream: Upstream, target: Target, request: Request, call: Call | None
) -> tuple[UpstreamResponse | None, tuple[str, GatewayError] | None, str, Exchange | None]:
    """One attempt: (response, None, outcome, exchange) or (None, (kind, error), kind, _)."""
    (method, path, headers, body), exchange = _prepare(target, request, call)
    breaker = target.breaker
    if exchange is not None and exchange.local is not None:
        breaker.release()
        return None, None, "success", exchange
    now = upstream.pool.clock
    try:
        # Bounded by the upstream's connect, first-byte and total timeouts (the client's).
        raw = await target.client.request(method, path, headers, body)
        resp: UpstreamResponse = raw if exchange is None else await _translated(exchange, raw)
    except ConnectTimeout:
        breaker.failure(now())
        return None, ("connect", UpstreamError(FAILED["connect"])), "connect", exchange
    except TimeoutError:
        breaker.failure(now())
        timeout = UpstreamTimeout("The upstream API did not respond in time.")
        return None, ("timeout", timeout), "timeout", exchange
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
        return None, (exc.kind, error), exc.kind, exchange
    except BaseException:
        breaker.release()  # cancelled (the client left): no verdict on the target
        raise
    status = resp.status
    if status >= 500:
        breaker.failure(now())
        retryable = status in upstream.retry_statuses
        return resp, None, "retryable_status" if retryable else "server_error", exchange
    if status in upstream.retry_statuses:
        # A 429 (or another retried 4xx): the target is up and asks to slow down. It is
        # retried elsewhere, but no verdict for the breaker, as in Envoy's outlier
        # detection: an open breaker would turn the provider's 429 into our 503.
        breaker.release()
        return resp, None, "retryable_status", exchange
    breaker.success()
    return resp, None, "success" if status < 400 else "client_error", exchange


async def _translated(exchange: Exchange, raw: UpstreamResponse) -> UpstreamResponse:
    """A cloud answer in Anthropic's shape (an error body read whole first)."""
    try:
        return await exchange.response(raw)
    except BaseException:
        raw.release()
        raise


def _next(
    upstream: Upstream,
    metrics: Metrics,
    allowed: Restriction,
    tried: list[Target],
    skipped: list[Target],
    resp: UpstreamResponse | None,
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
    target = pool.choose(allowed, tried + skipped)  # another target first
    if target is None:
        # Nothing else is eligible: the same one again, after what it asked for.
        after = retry_after(resp.headers.getall("retry-after", ())) if resp is not None else None
        if after is not None and after > retry.max_retry_after_seconds:
            return None
        target = pool.choose(allowed, skipped)
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
