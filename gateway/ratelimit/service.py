"""The configured rate limiter of one gateway process: settings, backend, clock, metrics.

Built once at start-up (`build`), opened and closed with the app
(`cleanup_ctx`), read by the stage and by /readyz (`status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.auth.principal import Limits, Principal
from gateway.context import Usage
from gateway.observe.metrics import Metrics
from gateway.ratelimit.base import Decision, Limiter, Reservation, Status
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.rules import Cost, RuleSet, rules_for
from gateway.ratelimit.settings import RateLimitSettings

_RULES_CACHE = 10_000
_TALLIES = 1024
T = TypeVar("T")


@dataclass
class RateLimit:
    settings: RateLimitSettings
    limiter: Limiter
    metrics: Metrics
    clock: Callable[[], float] = time.time
    # Backend calls still running on their own (shielded): awaited before the backend closes.
    pending: set[asyncio.Task[Any]] = field(default_factory=set)
    _rules: dict[tuple[str, str, Limits, bool], RuleSet] = field(default_factory=dict)
    _counters: dict[tuple[str, str], Any] = field(default_factory=dict)
    # A decision's outcomes (see `count`) -> the counter children it increments.
    _tallies: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)

    def rules(self, principal: Principal, tokens: bool) -> RuleSet:
        """`rules_for`, memoised: a principal's rules only change with the config."""
        key = (principal.key_id, principal.team, principal.limits, tokens)
        hit = self._rules.get(key)
        if hit is None:
            if len(self._rules) >= _RULES_CACHE:  # bounded: keys come and go
                self._rules.clear()
            hit = self._rules[key] = rules_for(self.settings, principal, tokens)
        return hit

    def count(self, rules: RuleSet, decision: Decision) -> None:
        """zdr_gateway_ratelimit_decisions_total, one sample per rule evaluated."""
        # The outcomes follow from these; the children to increment are looked up once
        # per combination (bounded: 8 rule names, 4 outcomes; in practice a handful).
        if not decision.error and all(decision.oks):
            key: tuple[Any, ...] = rules.names  # every rule "allowed", shadow or not
        else:
            key = (rules.names, rules.shadows, tuple(decision.oks), decision.error)
        children = self._tallies.get(key)
        if children is None:
            if len(self._tallies) >= _TALLIES:
                self._tallies.clear()
            children = self._tallies[key] = [self._counter(p) for p in _outcomes(rules, decision)]
        for child in children:
            child.inc()

    def _counter(self, pair: tuple[str, str]) -> Any:
        child = self._counters.get(pair)
        if child is None:  # label values are bounded: 8 rule names x 4 outcomes
            child = self._counters[pair] = self.metrics.ratelimit_decisions.labels(*pair)
        return child

    def status(self) -> Status:
        return self.limiter.status()

    def readiness(self) -> tuple[bool, str | None]:
        """For /readyz: (ready, what is wrong). A failing Redis is reported, but by default
        keeps the replica ready: every replica shares it, so pulling them all out of the
        Service would only turn the gateway's clear 503 into connection errors."""
        status = self.limiter.status()
        if status.healthy:
            return True, None
        if self.settings.fail_open:
            return True, f"rate limiter: {status.reason}; limits not enforced (fail_open)"
        detail = f"rate limiter: {status.reason}; limited requests refused (fail_closed)"
        return not self.settings.unready_on_redis_failure, detail

    def acquire_now(self, rules: RuleSet, cost: Cost) -> Decision | None:
        """The decision at once from a backend that never suspends (memory): nothing to
        wait for, nothing to shield, no coroutine. None: `await acquire(...)`."""
        if self.limiter.suspends:
            return None
        return self.limiter.acquire_now(rules, cost, self.clock())

    async def acquire(self, rules: RuleSet, cost: Cost) -> Decision:
        """The backend's acquire, shielded from the caller's cancellation: a client that goes
        away while Redis answers must not leave a reservation that nobody settles (its
        concurrency slot would stay held until the lease expires)."""
        if not self.limiter.suspends:  # cannot be interrupted: no task needed
            return await self.limiter.acquire(rules, cost, self.clock())
        task = self._spawn(self.limiter.acquire(rules, cost, self.clock()))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._settle_orphan)
            raise

    def settle_now(self, reservation: Reservation, usage: Usage) -> bool:
        """`settle` done at once by a backend that never suspends; False: await `settle`."""
        if self.limiter.suspends:
            return False
        return self.limiter.settle_now(reservation, usage, self.clock())

    async def settle(self, reservation: Reservation, usage: Usage) -> None:
        """Reconcile and release, to completion even if the caller is cancelled again."""
        if not self.limiter.suspends:
            return await self.limiter.settle(reservation, usage, self.clock())
        await asyncio.shield(self._spawn(self.limiter.settle(reservation, usage, self.clock())))

    def _settle_orphan(self, task: asyncio.Task[Decision]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        reservation = task.result().reservation
        if reservation is not None:  # admitted, but the request is gone: nothing was used
            self._spawn(self.limiter.settle(reservation, Usage(), self.clock()))

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return task

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RateLimit]:
        await self.limiter.start()
        try:
            yield self
        finally:
            if self.pending:
                await asyncio.wait(set(self.pending), timeout=5)
            await self.limiter.close()


def _outcomes(rules: RuleSet, decision: Decision) -> list[tuple[str, str]]:
    if decision.error:
        return [(name, "error") for name in rules.names]
    return [(r.rule.name, r.outcome) for r in decision.results]


def build(
    settings: RateLimitSettings, metrics: Metrics, clock: Callable[[], float] = time.time
) -> RateLimit:
    limiter: Limiter
    if settings.backend == "redis":
        from gateway.ratelimit.redis_backend import RedisLimiter

        limiter = RedisLimiter(settings, metrics)
    else:
        limiter = MemoryLimiter(settings.concurrency_lease_seconds)
    return RateLimit(settings, limiter, metrics, clock)
