"""The configured rate limiter of one gateway process: settings, backend, clock, metrics.

Built once at start-up (`build`), opened and closed with the app
(`cleanup_ctx`), read by the stage and by /readyz (`status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from gateway.metrics import Metrics
from gateway.ratelimit.base import Limiter, Status
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.settings import RateLimitSettings


@dataclass
class RateLimit:
    settings: RateLimitSettings
    limiter: Limiter
    metrics: Metrics
    clock: Callable[[], float] = time.time
    # Settlements (reconcile + release) still running: awaited before the backend closes.
    pending: set[asyncio.Task[None]] = field(default_factory=set)

    def status(self) -> Status:
        return self.limiter.status()

    def settle_soon(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return task

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RateLimit]:
        await self.limiter.start()
        try:
            yield self
        finally:
            if self.pending:
                await asyncio.wait(set(self.pending), timeout=5)
            await self.limiter.close()


def build(
    settings: RateLimitSettings, metrics: Metrics, clock: Callable[[], float] = time.time
) -> RateLimit:
    limiter: Limiter
    if settings.backend == "redis":
        from gateway.ratelimit.redis_backend import RedisLimiter

        limiter = RedisLimiter(settings, metrics)
    else:
        limiter = MemoryLimiter(settings.concurrency_lease_seconds)
    return RateLimit(settings, limiter, metrics, clock)
