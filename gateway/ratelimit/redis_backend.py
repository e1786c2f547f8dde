"""The Redis backend: limits shared by every replica and worker.

One round trip per admission: the ACQUIRE script checks and reserves all
rules of a request atomically (they share one hash tag, see `rules.py`).
Every key has a TTL (a bucket expires once drained, a slot set after its
longest lease), so Redis holds only live state.

When Redis fails (down, timeout, script error) the outcome is the configured
`failure_mode`, never a silent switch to per-process counting: `fail_closed`
refuses (`Admission.allowed` false), `fail_open` admits unchecked; both are
marked `Admission.error`, counted, and shown by `status()` (for /readyz). A
background probe notices recovery without traffic; a restarted Redis is
picked up by the pool (scripts are reloaded on NOSCRIPT by redis-py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway import tasks
from gateway.context import Usage
from gateway.observe.metrics import Metrics
from gateway.ratelimit import lua
from gateway.ratelimit.base import (
    Admission,
    Limiter,
    Reservation,
    Status,
    admit,
    deltas,
    reservation_ids,
)
from gateway.ratelimit.rules import Cost, LimitRule, RuleSet
from gateway.ratelimit.settings import RateLimitSettings

log = logging.getLogger("gateway.ratelimit")
T = TypeVar("T")


class BackendError(Exception):
    pass


class RedisLimiter(Limiter):
    def __init__(self, settings: RateLimitSettings, metrics: Metrics) -> None:
        assert settings.redis_url is not None
        self._settings = settings
        self._metrics = metrics
        self._timeout = settings.redis_timeout_seconds
        # One retry, on a connection error only: a pooled connection that died with a
        # restarted Redis is replaced at once instead of failing one request per connection.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            timeout=self._timeout,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._redis: Redis = Redis(connection_pool=pool)
        self._acquire = self._redis.register_script(lua.ACQUIRE)
        self._settle = self._redis.register_script(lua.SETTLE)
        self._in_flight = self._redis.register_script(lua.IN_FLIGHT)
        self._healthy = True
        self._reason = ""
        self._probe: asyncio.Task[None] | None = None
        self._ids = reservation_ids()

    async def acquire(self, rules: Sequence[LimitRule], cost: Cost, now: float) -> Admission:
        rs = RuleSet.of(rules)
        if not rs:
            return admit(rs, [], [], now, next(self._ids))
        costs = rs.costs(cost)
        rid = next(self._ids)
        lease = self._settings.concurrency_lease_seconds
        args: list[Any] = [repr(now), rid, repr(now + lease), int(lease * 1000)]
        for rule, c in zip(rs, costs, strict=True):
            kind = "c" if rule.concurrent else "r"
            args.append(f"{kind} {rule.capacity!r} {rule.rate!r} {c!r} {int(rule.shadow)}")
        try:
            reply = await self._call("acquire", self._acquire, list(rs.keys), args)
        except BackendError:
            return Admission(allowed=self._settings.fail_open, now=now, error=True)
        levels = [float(v) for v in reply[1:]]
        decision = admit(rs, costs, levels, now, rid)
        if decision.allowed != bool(int(reply[0])):  # pragma: no cover - formulas mirror
            log.error("ratelimit script and admit() disagree", extra={"rules": len(rules)})
        return decision

    async def reconcile(self, reservation: Reservation, usage: Usage, now: float) -> None:
        if not reservation.reconciled:
            reservation.reconciled = True
            await self._settle_script("reconcile", reservation, deltas(reservation, usage), [], now)

    async def release(self, reservation: Reservation, now: float) -> None:
        if not reservation.released:
            reservation.released = True
            await self._settle_script("release", reservation, [], reservation.slots, now)

    async def settle(self, reservation: Reservation, usage: Usage, now: float) -> None:
        """Reconcile and release in one round trip (what the stage calls)."""
        changes = [] if reservation.reconciled else deltas(reservation, usage)
        slots = [] if reservation.released else reservation.slots
        reservation.reconciled = reservation.released = True
        await self._settle_script("settle", reservation, changes, slots, now)

    async def _settle_script(
        self,
        op: str,
        reservation: Reservation,
        changes: list[tuple[LimitRule, float]],
        slots: list[LimitRule],
        now: float,
    ) -> None:
        if not changes and not slots:
            return
        keys = [r.key for r, _ in changes] + [r.key for r in slots]
        args: list[Any] = [repr(now), reservation.id, len(changes)]
        for rule, delta in changes:
            args += [repr(rule.rate), repr(delta)]
        # On failure a token reservation stands until it drains (over-, never under-counted)
        # and a slot is freed when its lease expires (concurrency_lease_seconds).
        with contextlib.suppress(BackendError):
            await self._call(op, self._settle, keys, args)

    async def in_flight(self, rule: LimitRule, now: float) -> int:
        return int(await self._call("in_flight", self._in_flight, [rule.key], [repr(now)]))

    def status(self) -> Status:
        if self._healthy:
            return Status(True, "redis")
        return Status(False, "redis", self._reason)

    async def start(self) -> None:
        with contextlib.suppress(BackendError):
            await self._call("ping", self._redis.ping)
        self._probe = asyncio.create_task(self._probe_loop())

    async def close(self) -> None:
        await tasks.cancel(self._probe)
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.health_interval_seconds)
            with contextlib.suppress(BackendError):
                await self._call("ping", self._redis.ping)

    async def _call(self, op: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout * 2):
                result = await fn(*args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._metrics.redis_errors.labels(op).inc()
            self._mark_down(exc)
            raise BackendError(op) from None
        self._metrics.redis_duration.labels(op).observe(time.perf_counter() - started)
        if not self._healthy:
            log.warning("redis reachable again; rate limits enforced")
        self._healthy, self._reason = True, ""
        return result

    def _mark_down(self, exc: BaseException) -> None:
        # Fixed text only: a Redis error message may echo the URL (credentials).
        if isinstance(exc, TimeoutError | RedisTimeoutError):
            reason = "redis timeout"
        elif isinstance(exc, RedisConnectionError | OSError):
            reason = "redis unreachable"
        else:
            reason = "redis error"
        if self._healthy:
            mode = "admitting unchecked" if self._settings.fail_open else "refusing requests"
            log.error("redis failed; rate limits %s", mode, extra={"reason": reason})
        self._healthy, self._reason = False, reason
