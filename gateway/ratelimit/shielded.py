"""A backend that waits on I/O (Redis), run so that its caller's cancellation cannot cut
a call short.

A request's task is cancelled when its client goes away. Were that to interrupt a
call to Redis, an admission Redis made anyway would be a reservation nobody settles
(its concurrency slot held until the lease expires), and an interrupted settlement
would leave tokens and a slot reserved. So every call runs as a task of its own that
the caller awaits shielded; an admission whose caller is gone is settled at once
with nothing used; `close` waits for calls still running before the backend closes.

The memory backend is used bare: it never suspends, so a cancellation cannot land
inside one of its calls, and a task per call would only cost the request path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from gateway.context import Usage
from gateway.ratelimit.base import Admission, Limiter, Reservation, Status
from gateway.ratelimit.rules import Cost, LimitRule

T = TypeVar("T")


class Shielded(Limiter):
    def __init__(self, inner: Limiter, clock: Callable[[], float]) -> None:
        self.inner = inner
        self._clock = clock
        # Calls still running on their own: awaited (bounded) before the backend closes.
        self.pending: set[asyncio.Task[Any]] = set()

    async def acquire(self, rules: Sequence[LimitRule], cost: Cost, now: float) -> Admission:
        task = self._spawn(self.inner.acquire(rules, cost, now))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._settle_orphan)
            raise

    async def reconcile(self, reservation: Reservation, usage: Usage, now: float) -> None:
        await asyncio.shield(self._spawn(self.inner.reconcile(reservation, usage, now)))

    async def release(self, reservation: Reservation, now: float) -> None:
        await asyncio.shield(self._spawn(self.inner.release(reservation, now)))

    async def settle(self, reservation: Reservation, usage: Usage, now: float) -> None:
        await asyncio.shield(self._spawn(self.inner.settle(reservation, usage, now)))

    async def in_flight(self, rule: LimitRule, now: float) -> int:
        return await self.inner.in_flight(rule, now)

    def status(self) -> Status:
        return self.inner.status()

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=5)
        await self.inner.close()

    def _settle_orphan(self, task: asyncio.Task[Admission]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        reservation = task.result().reservation
        if reservation is not None:  # admitted, but the request is gone: nothing was used
            self._spawn(self.inner.settle(reservation, Usage(), self._clock()))

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return task
