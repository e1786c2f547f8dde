"""The limiter interface every backend implements, and the decision it returns.

    decision = await limiter.acquire(rules, cost, now)   # atomic over all rules
    ...                                                   # the request runs
    await limiter.reconcile(decision.reservation, usage, now)  # refund / charge tokens
    await limiter.release(decision.reservation, now)           # free the concurrency slot

`acquire` either reserves every non-shadow rule of the request or none of
them. Tokens are reserved up front (estimated input, `max_tokens` output), so
concurrent requests cannot overshoot a limit by more than they reserved
honestly; `reconcile` replaces the reservation by the real usage. `reconcile`
and `release` are idempotent: a reservation is settled at most once.
"""

from __future__ import annotations

import math
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.ratelimit import gcra
from gateway.ratelimit.rules import Cost, Rule, rule_cost
from gateway.usage import Usage


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: Rule
    ok: bool
    cost: float
    # Level after the decision (after the reservation if it was made).
    level: float
    applied: bool

    @property
    def outcome(self) -> str:
        if self.ok:
            return "allowed"
        return "shadow_refused" if self.rule.shadow else "refused"

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.rule.capacity - self.level + gcra.EPS))

    def wait(self) -> float:
        if self.rule.concurrent:
            # A slot frees when some request ends: unknown, retry soon (never, with none).
            return 1.0 if self.rule.capacity >= 1 else math.inf
        return gcra.wait_seconds(self.level, self.cost, self.rule.capacity, self.rule.rate)


@dataclass(slots=True)
class Reservation:
    id: str
    # Token rules reserved, with what was reserved against each.
    charges: list[tuple[Rule, float]]
    slots: list[Rule]
    reconciled: bool = False
    released: bool = False


@dataclass(slots=True)
class Decision:
    allowed: bool
    now: float
    results: list[RuleResult] = field(default_factory=list)
    reservation: Reservation | None = None
    # The backend failed and `fail_open` admitted the request unchecked.
    error: bool = False

    @property
    def refused(self) -> list[RuleResult]:
        return [r for r in self.results if not r.ok and not r.rule.shadow]


def new_id() -> str:
    return uuid.uuid4().hex


def decide(
    rules: Sequence[Rule], costs: Sequence[float], levels: Sequence[float], now: float, rid: str
) -> Decision:
    """From each rule's level before the request, the all-or-nothing decision.

    A shadow rule that would refuse is counted but not reserved (it simulates what
    enforcing it would have done); every other rule is reserved only if no
    enforced rule refuses.
    """
    oks = [_fits(r, c, lv) for r, c, lv in zip(rules, costs, levels, strict=True)]
    allowed = all(ok or r.shadow for r, ok in zip(rules, oks, strict=True))
    results = []
    for rule, cost, level, ok in zip(rules, costs, levels, oks, strict=True):
        applied = allowed and ok
        results.append(RuleResult(rule, ok, cost, level + cost if applied else level, applied))
    reservation = None
    if allowed:
        reservation = Reservation(
            rid,
            [(r.rule, r.cost) for r in results if r.applied and _is_tokens(r.rule)],
            [r.rule for r in results if r.applied and r.rule.concurrent],
        )
    return Decision(allowed, now, results, reservation)


def costs_of(rules: Sequence[Rule], cost: Cost) -> list[float]:
    return [rule_cost(r, cost) for r in rules]


def deltas(reservation: Reservation, usage: Usage) -> list[tuple[Rule, float]]:
    """Real usage minus what was reserved, per token rule (input counts cache writes,
    as the provider's input-token limit does; cache reads are not counted)."""
    actual = {
        "input_tokens": usage.input_tokens + usage.cache_creation_input_tokens,
        "output_tokens": usage.output_tokens,
    }
    out = []
    for rule, reserved in reservation.charges:
        delta = actual[rule.dimension] - reserved
        if delta:
            out.append((rule, float(delta)))
    return out


def _fits(rule: Rule, cost: float, level: float) -> bool:
    return gcra.fits(level, cost, rule.capacity)


def _is_tokens(rule: Rule) -> bool:
    return rule.dimension in ("input_tokens", "output_tokens")


@dataclass(frozen=True, slots=True)
class Status:
    healthy: bool
    backend: str
    # Fixed text only, for /readyz (never a Redis error message: it may carry the URL).
    reason: str = ""


class Limiter(ABC):
    """A rate-limit backend. Implementations: `memory`, `redis`."""

    # False when no method ever awaits (memory): a call cannot be interrupted halfway,
    # so callers need no shielding task.
    suspends = True

    @abstractmethod
    async def acquire(self, rules: Sequence[Rule], cost: Cost, now: float) -> Decision:
        """Check and reserve every rule atomically; raise `Unavailable` when the
        backend fails under `fail_closed`."""

    @abstractmethod
    async def reconcile(self, reservation: Reservation, usage: Usage, now: float) -> None:
        """Replace the token reservation by real usage. Idempotent; never raises."""

    @abstractmethod
    async def release(self, reservation: Reservation, now: float) -> None:
        """Free the concurrency slots. Idempotent; never raises."""

    async def settle(self, reservation: Reservation, usage: Usage, now: float) -> None:
        """`reconcile` then `release`; a backend may do both in one round trip."""
        try:
            await self.reconcile(reservation, usage, now)
        finally:
            await self.release(reservation, now)

    @abstractmethod
    async def in_flight(self, rule: Rule, now: float) -> int:
        """Slots held against a concurrency rule (for tests and operators)."""

    def status(self) -> Status:
        return Status(True, "memory")

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
