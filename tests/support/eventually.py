"""Bounded waits for a condition that something elsewhere makes true.

`await eventually(check)` calls `check` (a function, or one returning an awaitable)
every `interval` seconds until it returns a truthy value, and returns that value.
An `AssertionError` raised by `check`, or an exception of a type in `ignore`, counts
as "not yet". At `timeout` it fails with an `AssertionError` that names `what` and
the last result (or chains the last exception); anything else raised (e.g.
`pytest.fail` for "this will never happen") ends the wait at once. `eventually_blocking` is the same
for code without an event loop (fixtures that start a process).

Waiting on an event or a condition, never a fixed sleep: a test is as fast as the
thing it waits for, and as patient as `timeout` on a loaded machine.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

Ignored = tuple[type[BaseException], ...]


@overload
async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str = ...,
    ignore: Ignored = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str = ...,
    ignore: Ignored = ...,
) -> T: ...


async def eventually(
    check: Callable[[], object],
    *,
    timeout: float = 5.0,
    interval: float = 0.02,
    what: str = "the condition",
    ignore: Ignored = (),
) -> object:
    retry: Ignored = (AssertionError, *ignore)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result: object = None
        error: BaseException | None = None
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
        except retry as e:
            error = e
        if error is None and result:
            return result
        if loop.time() >= deadline:
            raise _timed_out(what, timeout, result, error)
        await asyncio.sleep(interval)


def eventually_blocking(
    check: Callable[[], T],
    *,
    timeout: float = 5.0,
    interval: float = 0.02,
    what: str = "the condition",
    ignore: Ignored = (),
) -> T:
    retry: Ignored = (AssertionError, *ignore)
    deadline = time.monotonic() + timeout
    while True:
        result: T | None = None
        error: BaseException | None = None
        try:
            result = check()
        except retry as e:
            error = e
        if error is None and result:
            return result
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, result, error)
        time.sleep(interval)


def _timed_out(what: str, timeout: float, result: object, error: BaseException | None) -> Exception:
    if error is not None:
        failure = AssertionError(f"{what}: not met within {timeout}s ({error!r})")
        failure.__cause__ = error
        return failure
    return AssertionError(f"{what}: not met within {timeout}s (last: {result!r})")
