"""The circuit breaker, on an injected clock: opens, sheds, probes once, closes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.routing.breaker import CLOSED, HALF_OPEN, OPEN, Breaker
from gateway.routing.settings import BreakerSettings


def breaker(**kw: object) -> tuple[Breaker, list[str]]:
    seen: list[str] = []
    return Breaker(BreakerSettings.model_validate(kw), seen.append), seen


def test_opens_after_consecutive_failures_and_sheds() -> None:
    b, seen = breaker(consecutive_failures=3, cooldown_seconds=10)
    for _ in range(2):
        b.failure(0.0)
    assert b.state == CLOSED
    assert b.allow(0.0)
    b.failure(0.0)
    assert b.state == OPEN
    assert seen == [OPEN]
    assert not b.available(9.99)
    assert not b.allow(9.99)


def test_a_success_resets_the_run_of_failures() -> None:
    b, _ = breaker(consecutive_failures=3)
    for _ in range(10):
        b.failure(0.0)
        b.failure(0.0)
        b.success()
    assert b.state == CLOSED


def test_opens_on_failure_rate_once_min_requests_seen() -> None:
    b, _ = breaker(consecutive_failures=1000, failure_rate=0.5, min_requests=10)
    for _ in range(4):  # 8 requests, half failed: too few to judge
        b.success()
        b.failure(0.0)
    assert b.state == CLOSED
    b.success()
    b.failure(1.0)  # 10 requests, 5 failed
    assert b.state == OPEN


def test_rate_window_forgets_old_outcomes() -> None:
    b, _ = breaker(consecutive_failures=1000, failure_rate=0.5, min_requests=4, window_requests=4)
    b.failure(0.0)
    for _ in range(20):
        b.success()
    b.failure(0.0)  # 1 of the last 4 failed
    assert b.state == CLOSED


def test_half_open_lets_one_probe_through_then_closes() -> None:
    b, seen = breaker(consecutive_failures=1, cooldown_seconds=5)
    b.failure(0.0)
    assert b.allow(5.0)  # the probe
    assert b.state == HALF_OPEN
    assert not b.allow(5.0)
    assert not b.available(6.0)
    b.success()
    assert b.state == CLOSED
    assert b.allow(6.0)
    assert b.allow(6.0)
    assert seen == [OPEN, HALF_OPEN, CLOSED]


def test_failed_probe_opens_again_for_a_new_cooldown() -> None:
    b, _ = breaker(consecutive_failures=1, cooldown_seconds=5)
    b.failure(0.0)
    assert b.allow(5.0)
    b.failure(5.0)
    assert b.state == OPEN
    assert not b.available(9.9)
    assert b.available(10.0)


def test_released_probe_frees_the_slot() -> None:
    b, _ = breaker(consecutive_failures=1, cooldown_seconds=1)
    b.failure(0.0)
    assert b.allow(1.0)
    b.release()  # e.g. the client went away mid-probe
    assert b.state == HALF_OPEN
    assert b.allow(1.0)


def test_late_failure_does_not_extend_the_cooldown() -> None:
    b, _ = breaker(consecutive_failures=1, cooldown_seconds=5)
    b.failure(0.0)
    b.failure(4.0)  # a request sent before it opened
    assert b.available(5.0)


def test_disabled_never_opens() -> None:
    b, _ = breaker(enabled=False, consecutive_failures=1)
    for _ in range(50):
        b.failure(0.0)
    assert b.allow(0.0)
    assert b.state == CLOSED


@pytest.mark.parametrize(
    "bad",
    [
        {"consecutive_failures": 0},
        {"failure_rate": 0},
        {"min_requests": 200, "window_requests": 100},
    ],
)
def test_bad_settings_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BreakerSettings.model_validate(bad)
