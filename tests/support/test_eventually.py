"""The shared wait helper: returns the first truthy result, retries, and is bounded."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.eventually import eventually, eventually_blocking


async def test_returns_the_first_truthy_result_of_a_sync_or_async_check() -> None:
    calls = iter([0, 0, 7])
    assert await eventually(lambda: next(calls), interval=0) == 7

    async def ready() -> str:
        await asyncio.sleep(0)
        return "ok"

    assert await eventually(ready) == "ok"


async def test_an_assertion_or_an_ignored_error_means_not_yet() -> None:
    attempts = 0

    def check() -> bool:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionRefusedError
        assert attempts > 2
        return True

    assert await eventually(check, interval=0, ignore=(OSError,))
    assert attempts == 3


async def test_times_out_naming_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"the door: not met within 0\.05s \(last: 0\)"):
        await eventually(lambda: 0, timeout=0.05, what="the door")
    with pytest.raises(AssertionError, match="not met") as info:
        await eventually(lambda: 1 / 0, timeout=0.05, ignore=(ZeroDivisionError,))
    assert isinstance(info.value.__cause__, ZeroDivisionError)


async def test_an_error_not_ignored_fails_at_once() -> None:
    with pytest.raises(ZeroDivisionError):
        await eventually(lambda: 1 / 0, timeout=5)


def test_the_blocking_twin_is_bounded_too() -> None:
    assert eventually_blocking(lambda: "yes") == "yes"
    with pytest.raises(AssertionError, match=r"not met within 0\.05s"):
        eventually_blocking(lambda: False, timeout=0.05, interval=0.01)
