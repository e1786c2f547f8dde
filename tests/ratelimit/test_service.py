from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from gateway.context import Usage
from gateway.observe.metrics import Metrics
from gateway.ratelimit import service
from gateway.ratelimit.base import Admission
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.redis_backend import RedisLimiter
from gateway.ratelimit.rules import Cost, LimitRule
from gateway.ratelimit.service import RateLimit, build
from gateway.ratelimit.settings import RateLimitSettings
from gateway.ratelimit.shielded import Shielded

from .test_backends import T0, principal

SHADOW_T1 = {"teams": {"t1": {"rpm": 1, "shadow": ["rpm"]}}}


def test_rules_are_memoised_per_key_team_and_claims() -> None:
    rl = build(RateLimitSettings(), Metrics(CollectorRegistry()))
    assert isinstance(rl.limiter, MemoryLimiter)
    a = rl.rules(principal(rpm=5), tokens=False)
    assert rl.rules(principal(rpm=5), tokens=False) is a
    assert rl.rules(principal(rpm=6), tokens=False)[0].limit == 6
    assert rl.rules(principal(rpm=5), tokens=True) is not a


async def test_decisions_are_counted_per_rule_and_outcome() -> None:
    registry = CollectorRegistry()
    rl = build(RateLimitSettings.model_validate(SHADOW_T1), Metrics(registry))
    rules = rl.rules(principal(rpm=1), tokens=False)
    for _ in range(2):
        rl.count(rules, await rl.limiter.acquire(rules, Cost(), T0))
    rl.count(rules, Admission(allowed=True, now=T0, error=True))

    def sample(limit: str, outcome: str) -> float | None:
        labels = {"limit": limit, "outcome": outcome}
        return registry.get_sample_value("zdr_gateway_ratelimit_decisions_total", labels)

    assert sample("key_rpm", "allowed") == 1
    assert sample("key_rpm", "refused") == 1
    assert sample("team_rpm", "allowed") == 1
    assert sample("team_rpm", "shadow_refused") == 1
    assert sample("key_rpm", "error") == 1
    assert sample("team_rpm", "error") == 1


class SlowLimiter(MemoryLimiter):
    """A memory limiter that answers like a remote one: after a pause."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def acquire(self, rules: Sequence[LimitRule], cost: Cost, now: float) -> Admission:
        await self.gate.wait()
        return await super().acquire(rules, cost, now)


async def test_a_request_cancelled_during_acquire_leaves_no_slot() -> None:
    limiter = SlowLimiter()
    shielded = Shielded(limiter, lambda: T0)
    rl = RateLimit(RateLimitSettings(), shielded, Metrics(CollectorRegistry()), clock=lambda: T0)
    rules = rl.rules(principal(concurrency=1, output_tpm=1000), tokens=True)
    waiting = asyncio.ensure_future(rl.acquire(rules, Cost(output_tokens=1000)))
    await asyncio.sleep(0)
    waiting.cancel()  # the client went away while the backend was answering
    with pytest.raises(asyncio.CancelledError):
        await waiting
    limiter.gate.set()  # ... and the backend admitted it anyway
    while shielded.pending:
        await asyncio.gather(*shielded.pending)
    assert await limiter.in_flight(rules[0], T0) == 0
    again = await rl.acquire(rules, Cost(output_tokens=1000))
    assert again.allowed  # the orphan's 1000 tokens were refunded too


async def test_settle_survives_a_second_cancellation() -> None:
    limiter = SlowLimiter()
    limiter.gate.set()
    shielded = Shielded(limiter, lambda: T0)
    rl = RateLimit(RateLimitSettings(), shielded, Metrics(CollectorRegistry()), clock=lambda: T0)
    rules = rl.rules(principal(concurrency=1), tokens=False)
    d = await rl.acquire(rules, Cost())
    assert d.reservation is not None
    assert await limiter.in_flight(rules[0], T0) == 1
    settling = asyncio.ensure_future(rl.settle(d.reservation, Usage()))
    await asyncio.sleep(0)
    settling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await settling
    await asyncio.gather(*shielded.pending)
    assert await limiter.in_flight(rules[0], T0) == 0


async def test_counting_stays_right_when_its_lookup_table_is_emptied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "_TALLIES", 2)
    registry = CollectorRegistry()
    rl = build(RateLimitSettings.model_validate(SHADOW_T1), Metrics(registry))
    decisions = []
    for key in ("a", "b", "c"):
        rules = rl.rules(principal(key, rpm=1), tokens=False)
        decisions += [(rules, await rl.limiter.acquire(rules, Cost(), T0)) for _ in range(2)]
    for rules, d in decisions * 2:
        rl.count(rules, d)
    assert len(rl._tallies) <= 2

    def sample(limit: str, outcome: str) -> float | None:
        labels = {"limit": limit, "outcome": outcome}
        return registry.get_sample_value("zdr_gateway_ratelimit_decisions_total", labels)

    assert sample("key_rpm", "allowed") == 6
    assert sample("key_rpm", "refused") == 6
    assert sample("team_rpm", "allowed") == 2
    assert sample("team_rpm", "shadow_refused") == 10


async def test_only_a_backend_that_waits_on_io_runs_shielded() -> None:
    memory = RateLimit(
        RateLimitSettings(), MemoryLimiter(), Metrics(CollectorRegistry()), clock=lambda: T0
    )
    rules = memory.rules(principal(concurrency=1), tokens=False)
    d = await memory.acquire(rules, Cost())
    assert d is not None
    assert d.reservation is not None
    assert await memory.limiter.in_flight(rules[0], T0) == 1
    await memory.settle(d.reservation, Usage())
    assert await memory.limiter.in_flight(rules[0], T0) == 0
    # The memory backend never suspends: used bare, no task per call. A backend that
    # answers later (Redis) is always awaited, shielded.
    assert isinstance(
        build(RateLimitSettings(), Metrics(CollectorRegistry())).limiter, MemoryLimiter
    )
    redis = RateLimitSettings(
        backend="redis", redis_url="redis://127.0.0.1:1/0", failure_mode="fail_closed"
    )
    built = build(redis, Metrics(CollectorRegistry())).limiter
    assert isinstance(built, Shielded)
    assert isinstance(built.inner, RedisLimiter)
    await built.close()
