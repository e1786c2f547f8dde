from __future__ import annotations

from prometheus_client import CollectorRegistry

from gateway.metrics import Metrics
from gateway.ratelimit.base import Decision
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.rules import Cost
from gateway.ratelimit.service import build
from gateway.ratelimit.settings import RateLimitSettings

from .test_backends import T0, principal


def test_rules_are_memoised_per_key_team_and_claims() -> None:
    rl = build(RateLimitSettings(), Metrics(CollectorRegistry()))
    assert isinstance(rl.limiter, MemoryLimiter)
    a = rl.rules(principal(rpm=5), tokens=False)
    assert rl.rules(principal(rpm=5), tokens=False) is a
    assert rl.rules(principal(rpm=6), tokens=False)[0].limit == 6
    assert rl.rules(principal(rpm=5), tokens=True) is not a


async def test_decisions_are_counted_per_rule_and_outcome() -> None:
    registry = CollectorRegistry()
    rl = build(RateLimitSettings(teams={"t1": {"rpm": 1, "shadow": ["rpm"]}}), Metrics(registry))
    rules = rl.rules(principal(rpm=1), tokens=False)
    for _ in range(2):
        rl.count(rules, await rl.limiter.acquire(rules, Cost(), T0))
    rl.count(rules, Decision(allowed=True, now=T0, error=True))

    def sample(limit: str, outcome: str) -> float | None:
        labels = {"limit": limit, "outcome": outcome}
        return registry.get_sample_value("zdr_gateway_ratelimit_decisions_total", labels)

    assert sample("key_rpm", "allowed") == 1
    assert sample("key_rpm", "refused") == 1
    assert sample("team_rpm", "allowed") == 1
    assert sample("team_rpm", "shadow_refused") == 1
    assert sample("key_rpm", "error") == 1
    assert sample("team_rpm", "error") == 1
