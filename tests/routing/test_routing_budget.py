"""The retry budget, on an injected clock: a bounded share of requests, in a sliding window."""

from __future__ import annotations

from gateway.routing.budget import RetryBudget
from gateway.routing.settings import BudgetSettings


def budget(**kw: object) -> RetryBudget:
    return RetryBudget(BudgetSettings.model_validate(kw))


def test_retries_stay_within_ratio_of_requests() -> None:
    b = budget(ratio=0.2, window_seconds=10, min_retries=0)
    granted = 0
    for i in range(1000):
        now = i * 0.001  # all inside one window
        b.request(now)
        granted += b.try_retry(now)
    assert granted == 200


def test_min_retries_when_quiet() -> None:
    b = budget(ratio=0.2, min_retries=3)
    b.request(0.0)
    assert [b.try_retry(0.0) for _ in range(5)] == [True, True, True, False, False]


def test_window_slides() -> None:
    b = budget(ratio=0.0, window_seconds=10, min_retries=2)
    assert b.try_retry(0.0)
    assert b.try_retry(0.5)
    assert not b.try_retry(9.0)  # both still in the window
    assert b.try_retry(10.5)
    assert b.try_retry(10.6)
    assert not b.try_retry(10.7)
    assert b.try_retry(100.0)
    assert b.try_retry(100.0)


def test_zero_budget_never_retries() -> None:
    b = budget(ratio=0.0, min_retries=0)
    for _ in range(10):
        b.request(1.0)
    assert not b.try_retry(1.0)
