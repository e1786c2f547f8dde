"""What the process holds, and whether it takes more: the body budget and the shedder.

Bookkeeping without aiohttp: the body stage reserves bytes in `BodyBudget` before it
reads them; the chain asks `Shedder.admit()` before it starts a request. Both answer
in constant time with no allocation, so a request pays two comparisons for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.errors import Overloaded
from gateway.observe.metrics import Metrics

# Reasons a request is shed: the label values of zdr_gateway_shed_requests_total
# (gateway.metrics.SHED_REASONS lists the same three).
BUDGET, IN_FLIGHT, LOOP_LAG = "body_budget", "in_flight", "loop_lag"


class BodyBudget:
    """Request body bytes held in memory across the process's in-flight requests."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def reserve(self, size: int) -> bool:
        """Take `size` bytes if they fit; False (and nothing taken) if they do not."""
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def release(self, size: int) -> None:
        self.held -= size
        assert self.held >= 0, "released more than was reserved"


class Shedder:
    """Admission for new requests: refused while too many are in flight or the event
    loop runs late. Requests already admitted are never affected.

    `lag` is written by the loop-lag sampler (gateway/serve/lag.py), which also calls
    `tick()` so that `saturated_for()` keeps moving while no request arrives."""

    __slots__ = ("_clock", "_since", "in_flight", "lag", "max_in_flight", "max_lag")

    def __init__(
        self,
        max_in_flight: int = 0,
        max_lag: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_in_flight = max_in_flight or 1 << 62
        self.max_lag = max_lag or float("inf")
        self.in_flight = 0
        self.lag = 0.0
        self._since: float | None = None
        self._clock = clock

    def admit(self) -> str | None:
        """None to go ahead, or the reason to shed."""
        if self.in_flight >= self.max_in_flight:
            return IN_FLIGHT
        if self.lag > self.max_lag:
            return LOOP_LAG
        return None

    def tick(self) -> None:
        """Note whether the process is saturated now (called on every lag sample)."""
        if self.admit() is None:
            self._since = None
        elif self._since is None:
            self._since = self._clock()

    def saturated_for(self) -> float:
        """Seconds the process has been continuously saturated (0 when it is not)."""
        return 0.0 if self._since is None else self._clock() - self._since


class Load:
    """The process's budget and shedder, with what a refusal says and counts."""

    __slots__ = ("_message", "_shed", "budget", "held_gauge", "retry_after", "shedder")

    def __init__(
        self, budget: BodyBudget, shedder: Shedder, retry_after: int, metrics: Metrics
    ) -> None:
        self.budget = budget
        self.shedder = shedder
        self.retry_after = str(retry_after)
        self.held_gauge = metrics.buffered_body_bytes
        self._shed = metrics.shed
        self._message = f"The gateway is overloaded; retry after {retry_after} s."

    def overloaded(self, reason: str) -> Overloaded:
        """The 529 for a request shed for `reason` (one of SHED_REASONS), counted."""
        self._shed.labels(reason).inc()
        return Overloaded(self._message, reason=reason, headers={"retry-after": self.retry_after})

    def release(self, held: int) -> None:
        """Give back a request's reserved body bytes."""
        if held:
            self.budget.release(held)
            self.held_gauge.dec(held)
