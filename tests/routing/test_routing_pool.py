"""Target choice: best priority, weights, breakers, label restrictions. Pure, no sockets."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest

from gateway.routing.breaker import Breaker
from gateway.routing.budget import RetryBudget
from gateway.routing.pool import TargetPool, matches, restriction
from gateway.routing.settings import BreakerSettings, BudgetSettings


@dataclass(eq=False)
class T:
    name: str
    weight: int = 1
    priority: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    breaker: Breaker = field(
        default_factory=lambda: Breaker(BreakerSettings(consecutive_failures=1, cooldown_seconds=5))
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pool(*targets: T, clock: Clock | None = None, seq: list[float] | None = None) -> TargetPool[T]:
    values = iter(seq or [])
    return TargetPool(
        list(targets),
        RetryBudget(BudgetSettings()),
        clock=clock or Clock(),
        random=lambda: next(values, 0.0),
    )


def test_weighted_among_the_best_priority() -> None:
    a, b, c = T("a", weight=1), T("b", weight=3), T("c", priority=1, weight=100)
    steps = [i / 1000 for i in range(1000)]
    p = pool(c, a, b, seq=steps)
    counts = Counter(p.choose(()).name for _ in steps)  # type: ignore[union-attr]
    assert counts == {"a": 250, "b": 750}  # c has a worse priority: never chosen


def test_falls_back_to_the_next_priority_when_the_best_is_open() -> None:
    clock = Clock()
    a, b = T("a"), T("b", priority=1)
    p = pool(a, b, clock=clock)
    a.breaker.failure(clock.now)
    assert p.choose(()) is b
    clock.now = 5.0  # a's cool-down is over: its probe goes first
    assert p.choose(()) is a
    assert p.choose(()) is b  # while the probe is out, a gets nothing else


def test_tried_targets_are_skipped() -> None:
    a, b = T("a"), T("b")
    p = pool(a, b)
    assert p.choose((), [a]) is b
    assert p.choose((), [a, b]) is None


def test_restriction_never_widens() -> None:
    clock = Clock()
    eu, us = T("eu", labels={"region": "eu"}), T("us", labels={"region": "us"})
    p = pool(eu, us, clock=clock)
    only_eu = restriction({"region": "eu"})
    assert {p.choose(only_eu).name for _ in range(20)} == {"eu"}  # type: ignore[union-attr]
    eu.breaker.failure(clock.now)
    assert p.choose(only_eu) is None  # never `us`
    assert p.choose(()) is us


def test_single_target_pool() -> None:
    clock = Clock()
    a = T("a", labels={"zdr": "true"})
    p = pool(a, clock=clock)
    assert p.choose(()) is a
    assert p.choose(restriction({"zdr": "true"})) is a
    assert p.choose(restriction({"zdr": "false"})) is None
    assert p.choose((), [a]) is None
    a.breaker.failure(clock.now)
    assert p.choose(()) is None


@pytest.mark.parametrize(
    ("labels", "sources", "ok"),
    [
        ({"region": "eu", "zdr": "true"}, [{"region": "eu"}], True),
        ({"region": "eu"}, [{"region": "eu"}, {"zdr": "true"}], False),
        ({"region": "eu"}, [{"region": "eu"}, (("region", "us"),)], False),  # conflict
        ({}, [None, ()], True),
    ],
)
def test_restrictions_add_up(labels: dict[str, str], sources: list[object], ok: bool) -> None:
    assert matches(labels, restriction(*sources)) is ok  # type: ignore[arg-type]


def test_weights_hold_among_the_eligible_when_one_is_out() -> None:
    import random

    clock = Clock()
    a, b, c = T("a"), T("b"), T("c", weight=2)
    p = TargetPool(
        [a, b, c], RetryBudget(BudgetSettings()), clock=clock, random=random.Random(7).random
    )
    a.breaker.failure(clock.now)
    counts = Counter(p.choose(()).name for _ in range(6000))  # type: ignore[union-attr]
    assert counts["a"] == 0
    assert 1800 < counts["b"] < 2200
    assert 3800 < counts["c"] < 4200
    eu_only = restriction({"zone": "x"})
    c.labels["zone"] = "x"
    assert {p.choose(eu_only).name for _ in range(50)} == {"c"}  # type: ignore[union-attr]
