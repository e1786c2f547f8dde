"""Event-loop lag: how late a timer fires. A loop busy with more work than one core can
do runs every callback late, and every request on the process waits that much longer;
past `server.shed.max_loop_lag_seconds` new requests are shed (see load.Shedder)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.observe.metrics import Metrics
from gateway.serve.load import Shedder


class LagSampler:
    def __init__(self, shedder: Shedder, interval: float, metrics: Metrics) -> None:
        self._shedder = shedder
        self._interval = interval
        self._metrics = metrics
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._last = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._due = loop.time() + self._interval
        self._handle = loop.call_at(self._due, self._sample)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _sample(self) -> None:
        # A bare timer, not a task: sampling costs one callback per interval.
        loop = asyncio.get_running_loop()
        now = loop.time()
        lag = max(0.0, now - self._due)
        # Shedding goes by the lesser of the last two samples: one stall (start-up, a GC
        # pause, a large body parsed) is not saturation; a loop late sample after
        # sample is.
        self._shedder.lag = min(lag, self._last)
        self._last = lag
        self._shedder.tick()
        self._metrics.loop_lag.set(lag)
        self._due = now + self._interval
        self._handle = loop.call_at(self._due, self._sample)

    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        """For `app.cleanup_ctx`."""
        self.start()
        try:
            yield
        finally:
            self.stop()
