"""Memory-only behaviour: the fused check-and-reserve against `admit`, lease bookkeeping,
the sweep that bounds memory, and reservation ids."""

from __future__ import annotations

import random

import pytest

from gateway.context import Usage
from gateway.ratelimit import memory
from gateway.ratelimit.base import admit, reservation_ids
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.rules import Cost, rules_for
from gateway.ratelimit.settings import RateLimitSettings

from .test_backends import T0, principal

SETTINGS = RateLimitSettings.model_validate(
    {"teams": {"t1": {"rpm": 40, "output_tpm": 900, "shadow": ["output_tpm"]}}}
)


async def test_acquire_decides_exactly_as_decide_does() -> None:
    rng = random.Random(7)
    limiter = MemoryLimiter(lease_seconds=5)
    rules = rules_for(
        SETTINGS, principal(rpm=30, input_tpm=2000, output_tpm=1000, concurrency=3), True
    )
    now, held, outcomes = T0, [], set()
    for _ in range(400):
        now += rng.choice((0.0, 0.05, 0.5, 2.0))
        cost = Cost(input_tokens=rng.randrange(0, 400), output_tokens=rng.randrange(0, 300))
        before = [limiter._level(r.key, r.rate, r.concurrent, now) for r in rules]
        got = await limiter.acquire(rules, cost, now)
        want = admit(rules, rules.costs(cost), before, now, "rid")
        assert (got.allowed, got.oks, got.costs, got.levels) == (
            want.allowed,
            want.oks,
            want.costs,
            want.levels,
        )
        assert (got.reservation is None) == (want.reservation is None)
        outcomes.add((got.allowed, tuple(got.oks)))
        if got.reservation is not None:
            held.append(got.reservation)
        if held and rng.random() < 0.5:
            done = held.pop(rng.randrange(len(held)))
            await limiter.settle(done, Usage(rng.randrange(0, 500), rng.randrange(0, 400)), now)
    # The walk went through admissions, refusals and shadow refusals alike.
    assert {allowed for allowed, _ in outcomes} == {True, False}
    assert any(allowed and not all(oks) for allowed, oks in outcomes)


async def test_a_released_slot_does_not_hide_a_leaked_one() -> None:
    limiter = MemoryLimiter(lease_seconds=30)
    rules = rules_for(RateLimitSettings(), principal(concurrency=2), tokens=False)
    (slot,) = rules
    first = await limiter.acquire(rules, Cost(), T0)
    assert (await limiter.acquire(rules, Cost(), T0 + 10)).allowed  # leaks (never released)
    assert first.reservation is not None
    await limiter.release(first.reservation, T0 + 11)
    assert await limiter.in_flight(slot, T0 + 35) == 1  # the first lease's end has passed
    assert await limiter.in_flight(slot, T0 + 39.9) == 1
    assert await limiter.in_flight(slot, T0 + 40) == 0  # the leaked lease ends
    assert [(await limiter.acquire(rules, Cost(), T0 + 41)).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]


async def test_sweep_drops_drained_buckets_and_empty_slot_sets() -> None:
    limiter = MemoryLimiter(lease_seconds=30)
    settings = RateLimitSettings()
    a = rules_for(settings, principal("a", rpm=60, concurrency=1), tokens=False)
    b = rules_for(settings, principal("b", rpm=60, concurrency=1), tokens=False)
    da = await limiter.acquire(a, Cost(), T0)
    assert da.reservation is not None
    await limiter.release(da.reservation, T0)
    assert (await limiter.acquire(b, Cost(), T0)).allowed  # b keeps its slot
    assert len(limiter._buckets) == 2
    assert len(limiter._slots) == 2
    limiter._sweep(T0 + 0.5)  # a's request is still counted
    assert set(limiter._buckets) == {a[0].key, b[0].key}
    assert set(limiter._slots) == {b[1].key}
    limiter._sweep(T0 + 1.0)  # one request at 1/s: drained
    assert not limiter._buckets
    assert set(limiter._slots) == {b[1].key}
    limiter._sweep(T0 + 31)  # b's lease is over
    assert not limiter._slots


async def test_sweep_runs_every_so_many_acquires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_SWEEP_EVERY", 3)
    limiter = MemoryLimiter()
    for i in range(3):
        rules = rules_for(RateLimitSettings(), principal(f"k{i}", rpm=60), tokens=False)
        await limiter.acquire(rules, Cost(), T0 + 10 * i)
    assert len(limiter._buckets) == 1  # the third acquire swept the two drained before it


def test_reservation_ids_are_unique_within_and_across_limiters() -> None:
    one, two = reservation_ids(), reservation_ids()
    a = [next(one) for _ in range(10_000)]
    b = [next(two) for _ in range(10_000)]
    assert len(set(a)) == len(a)
    assert not set(a) & set(b)
    assert len({x.split(".")[0] for x in a}) == 1  # one random prefix per limiter
    assert len(a[0].split(".")[0]) == 24  # 96 bits
