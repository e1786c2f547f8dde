"""A circuit breaker for one target. Pure: the caller passes the time (monotonic seconds).

    closed ──(N failures in a row, or failure rate ≥ r over ≥ min requests)──▶ open
    open ──(cool-down elapsed; `allow` hands out one probe)──▶ half_open
    half_open ──probe succeeds──▶ closed       half_open ──probe fails──▶ open

While open the target gets no request at all, not even "just one more try":
the pool chooses another target, or answers 503 when none is eligible. In
half-open exactly one request is in flight at a time; a probe that ends with
no verdict (the client left, the request was cancelled) `release`s its slot
so that the next request can probe.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from gateway.routing.settings import BreakerSettings

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
# The metric's value per state.
STATE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class Breaker:
    __slots__ = (
        "_consecutive",
        "_failures",
        "_opened_at",
        "_outcomes",
        "_probing",
        "on_change",
        "settings",
        "state",
    )

    def __init__(
        self, settings: BreakerSettings, on_change: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self.state = CLOSED
        self.on_change = on_change
        self._consecutive = 0
        # The last `window_requests` outcomes (True = failure) and how many failed.
        self._outcomes: deque[bool] = deque(maxlen=settings.window_requests)
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    def available(self, now: float) -> bool:
        """Whether a request may be sent now (does not take the probe slot)."""
        if self.state == CLOSED or not self.settings.enabled:
            return True
        if self.state == OPEN:
            return now - self._opened_at >= self.settings.cooldown_seconds
        return not self._probing

    def allow(self, now: float) -> bool:
        """Take the right to send one request now; in half-open, the one probe slot."""
        if self.state == CLOSED:  # PERF: the common case first
            return True
        if not self.available(now):
            return False
        if self.state == OPEN:
            self._set(HALF_OPEN)
        if self.state == HALF_OPEN:
            self._probing = True
        return True

    def release(self) -> None:
        """A request ended with no verdict on the target (e.g. the client went away)."""
        self._probing = False

    def success(self) -> None:
        self._probing = False
        self._consecutive = 0
        self._record(False)
        if self.state != CLOSED:
            self._reset()
            self._set(CLOSED)

    def failure(self, now: float) -> None:
        self._probing = False
        self._consecutive += 1
        self._record(True)
        if not self.settings.enabled:
            return
        s = self.settings
        seen = len(self._outcomes)
        if (
            self.state == HALF_OPEN
            or self._consecutive >= s.consecutive_failures
            or (seen >= s.min_requests and self._failures >= s.failure_rate * seen)
        ) and self.state != OPEN:
            # (A late failure of a request sent before it opened does not extend the
            # cool-down.)
            self._opened_at = now
            self._reset()
            self._set(OPEN)

    def _record(self, failed: bool) -> None:
        outcomes = self._outcomes
        if len(outcomes) == outcomes.maxlen and outcomes[0]:
            self._failures -= 1
        outcomes.append(failed)
        self._failures += failed

    def _reset(self) -> None:
        # A state change starts a fresh window: a closed breaker is judged on what
        # happened since it closed, not on the outage that opened it.
        self._outcomes.clear()
        self._failures = 0
        self._consecutive = 0

    def _set(self, state: str) -> None:
        self.state = state
        if self.on_change is not None:
            self.on_change(state)
