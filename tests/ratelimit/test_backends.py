"""The shared backend suite: every test runs against `memory` and a real redis-server.

Time is injected (`now`), so window arithmetic is exact and deterministic.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from gateway.auth.principal import Limits, Principal
from gateway.context import Usage
from gateway.ratelimit.base import Admission, RuleResult
from gateway.ratelimit.rules import Cost, LimitRule, rules_for

from .conftest import Env

T0 = 1_800_000_000.0


def principal(key: str = "k1", team: str = "t1", **limits: int) -> Principal:
    return Principal(key_id=key, team=team, source="key", limits=Limits(**limits))


def rule(rules: Sequence[LimitRule], name: str) -> LimitRule:
    return next(r for r in rules if r.name == name)


async def test_requests_per_minute_exact_then_smooth_refill(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(env.settings(), principal(rpm=5), tokens=False)
    admitted = [(await limiter.acquire(rules, Cost(), T0)).allowed for _ in range(8)]
    assert admitted == [True] * 5 + [False] * 3
    refused = await limiter.acquire(rules, Cost(), T0)
    assert refused.refused[0].rule.name == "key_rpm"
    assert math.isclose(refused.refused[0].wait(), 12.0)  # 60 s / 5
    # One request's worth refills every 12 s: not a window reset.
    assert not (await limiter.acquire(rules, Cost(), T0 + 11.9)).allowed
    assert (await limiter.acquire(rules, Cost(), T0 + 12.0)).allowed
    assert not (await limiter.acquire(rules, Cost(), T0 + 12.0)).allowed


async def test_no_double_burst_at_window_edge(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(env.settings(), principal(rpm=60), tokens=False)
    first = [(await limiter.acquire(rules, Cost(), T0 + 59.0)).allowed for _ in range(60)]
    # A fixed window would admit another 60 at the next minute's start (T0 + 60).
    edge = [(await limiter.acquire(rules, Cost(), T0 + 60.0)).allowed for _ in range(60)]
    assert sum(first) == 60
    assert sum(edge) == 1


async def test_concurrent_acquires_admit_exactly_the_limit(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(env.settings(), principal(rpm=50), tokens=False)
    decisions = await asyncio.gather(*(limiter.acquire(rules, Cost(), T0) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 50


async def test_concurrency_slots_exact_and_released(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(env.settings(), principal(concurrency=7), tokens=False)
    slot = rule(rules, "key_concurrency")
    decisions = await asyncio.gather(*(limiter.acquire(rules, Cost(), T0) for _ in range(100)))
    held = [d for d in decisions if d.allowed]
    assert len(held) == 7
    assert await limiter.in_flight(slot, T0) == 7
    refused = next(d for d in decisions if not d.allowed)
    assert refused.refused[0].wait() == 1.0
    for d in held:
        assert d.reservation is not None
        await limiter.release(d.reservation, T0 + 1)
        await limiter.release(d.reservation, T0 + 1)  # idempotent
    assert await limiter.in_flight(slot, T0 + 1) == 0
    again = await asyncio.gather(*(limiter.acquire(rules, Cost(), T0 + 2) for _ in range(10)))
    assert sum(d.allowed for d in again) == 7


async def test_double_release_does_not_free_another_requests_slot(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(env.settings(), principal(concurrency=2), tokens=False)
    a = await limiter.acquire(rules, Cost(), T0)
    b = await limiter.acquire(rules, Cost(), T0)
    assert a.reservation
    assert b.reservation
    await limiter.release(a.reservation, T0)
    await limiter.release(a.reservation, T0)
    assert await limiter.in_flight(rule(rules, "key_concurrency"), T0) == 1


async def test_leaked_slot_expires_after_its_lease(env: Env) -> None:
    limiter = await env.limiter(env.settings(concurrency_lease_seconds=30))
    rules = rules_for(env.settings(), principal(concurrency=1), tokens=False)
    assert (await limiter.acquire(rules, Cost(), T0)).allowed  # never released (crash)
    assert not (await limiter.acquire(rules, Cost(), T0 + 29)).allowed
    assert (await limiter.acquire(rules, Cost(), T0 + 31)).allowed


async def test_output_tokens_reserved_at_admission_then_refunded(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(env.settings(), principal(output_tpm=1000), tokens=True)
    cost = Cost(output_tokens=400)
    first = await limiter.acquire(rules, cost, T0)
    second = await limiter.acquire(rules, cost, T0)
    third = await limiter.acquire(rules, cost, T0)
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert third.refused[0].rule.name == "key_output_tpm"
    assert math.isclose(third.refused[0].wait(), 12.0)  # 200 tokens at 1000/60 per s
    assert first.reservation is not None
    await limiter.reconcile(first.reservation, Usage(output_tokens=100), T0)
    await limiter.reconcile(first.reservation, Usage(output_tokens=100), T0)  # idempotent
    after = await limiter.acquire(rules, cost, T0)
    assert after.allowed
    assert after.results[0].remaining == 1000 - 100 - 400 - 400


async def test_usage_above_reservation_is_charged(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(env.settings(), principal(input_tpm=600), tokens=True)
    d = await limiter.acquire(rules, Cost(input_tokens=100), T0)
    assert d.reservation is not None
    used = Usage(input_tokens=500, cache_creation_input_tokens=50)
    await limiter.reconcile(d.reservation, used, T0)
    nxt = await limiter.acquire(rules, Cost(input_tokens=100), T0)
    assert not nxt.allowed
    assert math.isclose(nxt.refused[0].wait(), 5.0)  # 50 tokens over, at 10/s


async def test_refund_never_creates_credit(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(env.settings(), principal(output_tpm=600), tokens=True)
    d = await limiter.acquire(rules, Cost(output_tokens=600), T0)
    assert d.reservation is not None
    # The reservation drained fully over 60 s; refunding it then must not go below empty.
    await limiter.reconcile(d.reservation, Usage(output_tokens=0), T0 + 120)
    burst = await limiter.acquire(rules, Cost(output_tokens=601), T0 + 120)
    assert not burst.allowed
    assert math.isinf(burst.refused[0].wait())


async def test_max_tokens_above_capacity_never_fits(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(env.settings(), principal(output_tpm=1000), tokens=True)
    d = await limiter.acquire(rules, Cost(output_tokens=1001), T0)
    assert not d.allowed
    assert math.isinf(d.refused[0].wait())


async def test_input_estimate_above_capacity_takes_the_whole_bucket(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(env.settings(), principal(input_tpm=1000), tokens=True)
    d = await limiter.acquire(rules, Cost(input_tokens=50_000), T0)
    assert d.allowed
    assert d.results[0].remaining == 0
    assert not (await limiter.acquire(rules, Cost(input_tokens=1), T0)).allowed


async def test_all_or_nothing_across_key_and_team(env: Env) -> None:
    settings = env.settings(teams={"t1": {"rpm": 2}})
    limiter = await env.limiter(settings)
    a = rules_for(settings, principal("a", rpm=10), tokens=False)
    b = rules_for(settings, principal("b", rpm=10), tokens=False)
    assert (await limiter.acquire(a, Cost(), T0)).allowed
    assert (await limiter.acquire(b, Cost(), T0)).allowed
    refused = await limiter.acquire(a, Cost(), T0)
    assert not refused.allowed
    assert [r.rule.name for r in refused.refused] == ["team_rpm"]
    # The key bucket was not charged for the refused request.
    assert rule_result(refused, "key_rpm").remaining == 9
    other = rules_for(settings, principal("c", team="t2", rpm=10), tokens=False)
    assert (await limiter.acquire(other, Cost(), T0)).allowed


async def test_refused_request_reserves_nothing_anywhere(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(
        env.settings(), principal(rpm=100, output_tpm=1000, concurrency=5), tokens=True
    )
    d = await limiter.acquire(rules, Cost(output_tokens=2000), T0)
    assert not d.allowed
    assert d.reservation is None
    assert await limiter.in_flight(rule(rules, "key_concurrency"), T0) == 0
    ok = await limiter.acquire(rules, Cost(output_tokens=10), T0)
    assert rule_result(ok, "key_rpm").remaining == 99


async def test_shadow_rule_counts_but_never_refuses(env: Env) -> None:
    settings = env.settings(teams={"t1": {"rpm": 1, "shadow": ["rpm"]}})
    limiter = await env.limiter(settings)
    rules = rules_for(settings, principal(rpm=10), tokens=False)
    outcomes = []
    for _ in range(3):
        d = await limiter.acquire(rules, Cost(), T0)
        assert d.allowed
        outcomes.append(rule_result(d, "team_rpm").outcome)
    assert outcomes == ["allowed", "shadow_refused", "shadow_refused"]
    assert rule_result(d, "key_rpm").remaining == 7


async def test_burst_multiplies_capacity_not_rate(env: Env) -> None:
    settings = env.settings(burst=2.0)
    limiter = await env.limiter(settings)
    rules = rules_for(settings, principal(rpm=6), tokens=False)
    assert sum([(await limiter.acquire(rules, Cost(), T0)).allowed for _ in range(20)]) == 12
    assert not (await limiter.acquire(rules, Cost(), T0 + 9.9)).allowed
    assert (await limiter.acquire(rules, Cost(), T0 + 10)).allowed


async def test_backends_agree_on_levels(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(
        env.settings(), principal(rpm=30, input_tpm=9000, output_tpm=3000), tokens=True
    )
    seen = []
    for i in range(12):
        d = await limiter.acquire(rules, Cost(input_tokens=700, output_tokens=300), T0 + i * 0.7)
        seen.append([(r.ok, round(r.level, 3)) for r in d.results])
        if d.reservation is not None and i % 3 == 0:
            await limiter.reconcile(d.reservation, Usage(700, 40), T0 + i * 0.7 + 0.3)
    # Expectations computed independently (piecewise-linear drain, refunds of 260 output).
    assert seen[0] == [(True, 1.0), (True, 700.0), (True, 300.0)]
    assert seen[-1] == [(True, 8.15), (True, 7245.0), (True, 2175.0)]


def rule_result(decision: Admission, name: str) -> RuleResult:
    return next(r for r in decision.results if r.rule.name == name)


async def test_settle_refunds_and_frees_once(env: Env) -> None:
    limiter = await env.limiter()
    rules = rules_for(env.settings(), principal(output_tpm=1000, concurrency=1), tokens=True)
    d = await limiter.acquire(rules, Cost(output_tokens=900), T0)
    assert d.reservation is not None
    assert not (await limiter.acquire(rules, Cost(output_tokens=50), T0)).allowed
    await limiter.settle(d.reservation, Usage(output_tokens=100), T0)
    await limiter.settle(d.reservation, Usage(output_tokens=0), T0)  # no second refund
    again = await limiter.acquire(rules, Cost(output_tokens=900), T0)
    assert again.allowed
    assert rule_result(again, "key_output_tpm").remaining == 0
    assert await limiter.in_flight(rule(rules, "key_concurrency"), T0) == 1


async def test_zero_limits_from_a_key_block_without_breaking_the_backend(env: Env) -> None:
    limiter = await env.limiter()
    for limits in ({"rpm": 0}, {"input_tpm": 0}, {"output_tpm": 0}, {"concurrency": 0}):
        rules = rules_for(env.settings(), principal("k1", "t1", **limits), tokens=True)
        d = await limiter.acquire(rules, Cost(input_tokens=10, output_tokens=10), T0)
        assert not d.allowed, limits
        assert not d.error
        assert math.isinf(d.refused[0].wait())  # x-should-retry: false, not a retry loop
