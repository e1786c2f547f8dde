"""Redis-only behaviour: TTLs, hash tags, and what happens when Redis goes away."""

from __future__ import annotations

import re
import time

import pytest
import redis.asyncio as aioredis

from gateway.context import Usage
from gateway.observe.metrics import Metrics
from gateway.ratelimit.redis_backend import RedisLimiter
from gateway.ratelimit.rules import Cost, rules_for
from gateway.ratelimit.service import build
from gateway.ratelimit.settings import RateLimitSettings
from gateway.ratelimit.shielded import Shielded
from tests.support.eventually import eventually
from tests.support.redis_server import RedisServer

from .test_backends import principal


def settings(url: str, mode: str = "fail_closed", **kw: object) -> RateLimitSettings:
    return RateLimitSettings.model_validate(
        {
            "backend": "redis",
            "redis_url": url,
            "failure_mode": mode,
            "redis_timeout_seconds": 0.3,
            "health_interval_seconds": 0.1,
        }
        | kw
    )


async def test_every_key_has_a_ttl_and_one_hash_tag(redis_server: RedisServer) -> None:
    s = settings(redis_server.url, redis_key_prefix="ttl", teams={"t1": {"rpm": 10}})
    limiter = RedisLimiter(s, Metrics())
    rules = rules_for(s, principal(rpm=100, output_tpm=6000, concurrency=3), tokens=True)
    tags = {re.search(r"\{[^}]*\}", r.key).group(0) for r in rules}  # type: ignore[union-attr]
    assert tags == {"{t.t1}"}  # one Redis Cluster slot: one atomic script
    now = time.time()
    d = await limiter.acquire(rules, Cost(output_tokens=600), now)
    assert d.allowed
    client = aioredis.from_url(redis_server.url)
    try:
        for r in rules:
            ttl = await client.pttl(r.key)
            assert ttl > 0, r.name
            if r.name == "key_output_tpm":
                assert ttl <= 6_000 + 1_000  # 600 tokens drain in 6 s at 100/s
        assert d.reservation is not None
        await limiter.reconcile(d.reservation, Usage(output_tokens=0), now)
        # Fully refunded: the bucket key is gone, nothing lingers.
        assert await client.exists(next(r.key for r in rules if r.name == "key_output_tpm")) == 0
    finally:
        await client.aclose()
        await limiter.close()


async def test_unsafe_team_and_key_names_cannot_break_the_hash_tag() -> None:
    s = RateLimitSettings()
    rules = rules_for(s, principal(key="a}b{c", team="x}{y:z", rpm=1), tokens=False)
    assert len(rules) == 1
    assert rules[0].key.count("{") == 1
    assert rules[0].key.count("}") == 1


@pytest.mark.parametrize("mode", ["fail_closed", "fail_open"])
async def test_redis_killed_then_restarted(own_redis: RedisServer, mode: str) -> None:
    metrics = Metrics()
    s = settings(own_redis.url, mode)
    limiter = RedisLimiter(s, metrics)
    await limiter.start()
    try:
        rules = rules_for(s, principal(rpm=3), tokens=False)
        now = time.time()
        assert (await limiter.acquire(rules, Cost(), now)).allowed
        assert limiter.status().healthy

        own_redis.kill()
        down = await limiter.acquire(rules, Cost(), now)
        assert down.error
        assert down.allowed is (mode == "fail_open")
        status = limiter.status()
        assert not status.healthy
        assert status.reason == "redis unreachable"
        assert (
            metrics.registry.get_sample_value("zdr_gateway_redis_errors_total", {"op": "acquire"})
            or 0
        ) >= 1

        own_redis.start()  # same port
        # The probe notices without any request.
        await eventually(lambda: limiter.status().healthy, timeout=2.5, interval=0.05)
        assert limiter.status().healthy
        # Limits resume at once; state before the restart is gone (no persistence),
        # so a fresh bucket of 3 applies.
        after = [await limiter.acquire(rules, Cost(), now) for _ in range(4)]
        assert [d.allowed for d in after] == [True, True, True, False]
        assert not any(d.error for d in after)
    finally:
        await limiter.close()


async def test_unreachable_at_start_is_reported_not_fatal() -> None:
    from tests.support.ports import free_port

    s = settings(f"redis://127.0.0.1:{free_port()}/0")
    limiter = RedisLimiter(s, Metrics())
    await limiter.start()
    try:
        assert not limiter.status().healthy
        d = await limiter.acquire(rules_for(s, principal(rpm=1), tokens=False), Cost(), time.time())
        assert d.error
        assert not d.allowed
    finally:
        await limiter.close()


async def test_a_hung_redis_times_out_instead_of_hanging(own_redis: RedisServer) -> None:
    s = settings(own_redis.url)
    limiter = RedisLimiter(s, Metrics())
    assert own_redis.proc is not None
    own_redis.proc.send_signal(19)  # SIGSTOP: accepts nothing, answers nothing
    try:
        started = time.monotonic()
        d = await limiter.acquire(rules_for(s, principal(rpm=1), tokens=False), Cost(), 0.0)
        assert d.error
        assert time.monotonic() - started < 2.0
        assert limiter.status().reason in ("redis timeout", "redis unreachable")
    finally:
        own_redis.proc.send_signal(18)  # SIGCONT
        await limiter.close()


async def test_the_redis_backend_is_shielded_and_settles_through_it(
    redis_server: RedisServer,
) -> None:
    s = settings(redis_server.url, redis_key_prefix="now")
    rl = build(s, Metrics())
    assert isinstance(rl.limiter, Shielded)  # never a bare call that a cancellation cuts
    async with rl.running():
        rules = rl.rules(principal(concurrency=1), tokens=False)
        d = await rl.acquire(rules, Cost())
        assert d.reservation is not None
        assert not d.reservation.released  # nothing was done: settle is still to come
        assert await rl.limiter.in_flight(rules[0], time.time()) == 1
        await rl.settle(d.reservation, Usage())
        assert d.reservation.released
        assert await rl.limiter.in_flight(rules[0], time.time()) == 0
