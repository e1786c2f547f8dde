"""The limiter interface every backend implements, and the admission it returns.

    admission = await limiter.acquire(rules, cost, now)  # atomic over all rules
    ...                                                   # the request runs
    await limiter.reconcile(admission.reservation, usage, now)  # refund / charge tokens
    await limiter.release(admission.reservation, now)           # free the concurrency slot

`acquire` either reserves every non-shadow rule of the request or none of
them. Tokens are reserved up front (estimated input, `max_tokens` output), so
concurrent requests cannot overshoot a limit by more than they reserved
honestly; `reconcile` replaces the reservation by the real usage. `reconcile`
and `release` are idempotent: a reservation is settled at most once.
"""

from __future__ import annotations

import itertools
import math
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from gateway.context import Usage
from gateway.ratelimit import gcra
from gateway.ratelimit.rules import Cost, LimitRule, RuleSet


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: LimitRule
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
        return gcra.remaining(self.level, self.rule.capacity)

    def wait(self) -> float:
        if self.rule.concurrent:
            # A slot frees when some request ends: unknown, retry soon (never, with none).
            return 1.0 if self.rule.capacity >= 1 else math.inf
        return gcra.wait_seconds(self.level, self.cost, self.rule.capacity, self.rule.rate)


@dataclass(slots=True)
class Reservation:
    """What one admitted request holds: every rule of `rules` that fitted (`oks`), with
    its cost (`costs`): token rules hold their cost, concurrency rules a slot."""

    # Names the reservation's concurrency slots (see `reservation_ids`; memory: a counter).
    id: str | int
    rules: RuleSet
    costs: Sequence[float]
    oks: Sequence[bool]
    reconciled: bool = False
    released: bool = False

    @property
    def charges(self) -> list[tuple[LimitRule, float]]:
        """Token rules reserved, with what was reserved against each."""
        rs = self.rules
        return [(rs.rules[i], self.costs[i]) for i in rs.token_indexes if self.oks[i]]

    @property
    def slots(self) -> list[LimitRule]:
        """Concurrency rules holding a slot."""
        rs = self.rules
        return [rs.rules[i] for i in rs.slot_indexes if self.oks[i]]


@dataclass(slots=True)
class Admission:
    allowed: bool
    now: float
    reservation: Reservation | None = None
    # The backend failed and `fail_open` admitted the request unchecked.
    error: bool = False
    # Per rule, in order: the rule set, each rule's cost, whether it fitted, and its level
    # after the decision (after the reservation if it was made). Parallel arrays rather
    # than a RuleResult per rule: the request path reads them in tight loops.
    rules: RuleSet = field(default_factory=RuleSet)
    costs: Sequence[float] = ()
    oks: Sequence[bool] = ()
    levels: Sequence[float] = ()

    @property
    def results(self) -> list[RuleResult]:
        return [
            RuleResult(rule, ok, cost, level, self.allowed and ok)
            for rule, ok, cost, level in zip(
                self.rules.rules, self.oks, self.costs, self.levels, strict=True
            )
        ]

    @property
    def refused(self) -> list[RuleResult]:
        return [r for r in self.results if not r.ok and not r.rule.shadow]


def reservation_ids() -> Iterator[str]:
    """Reservation ids for a limiter shared between processes: a counter behind 96 random
    bits.

    The id only names a reservation's concurrency slot (a member of the slot set in
    Redis until released or its lease expires), so it must be unique among live slots
    across every replica sharing Redis: the random prefix makes it so (limiters are
    built in each process, workers are spawned, never forked with one), and the counter
    keeps it unique within the process at a fraction of uuid4's cost. In memory, slots
    are the process's own: a plain counter is enough.
    """
    return map(f"{secrets.token_hex(12)}.{{}}".format, itertools.count(1))


def admit(
    rules: Sequence[LimitRule],
    costs: Sequence[float],
    levels: Sequence[float],
    now: float,
    rid: str | int,
) -> Admission:
    """From each rule's level before the request, the all-or-nothing decision.

    A shadow rule that would refuse is counted but not reserved (it simulates what
    enforcing it would have done); every other rule is reserved only if no
    enforced rule refuses.
    """
    rs = RuleSet.of(rules)
    if len(costs) != len(rs) or len(levels) != len(rs):
        raise ValueError("one cost and one level per rule")
    fits = gcra.fits
    oks = [fits(lv, c, cap) for lv, c, cap in zip(levels, costs, rs.caps, strict=True)]
    after = list(levels)
    for i, ok in enumerate(oks):
        if ok:
            after[i] += costs[i]
        elif not rs.shadows[i]:
            return Admission(False, now, None, False, rs, costs, oks, levels)
    return Admission(True, now, Reservation(rid, rs, costs, oks), False, rs, costs, oks, after)


def costs_of(rules: Sequence[LimitRule], cost: Cost) -> list[float]:
    return RuleSet.of(rules).costs(cost)


def deltas(reservation: Reservation, usage: Usage) -> list[tuple[LimitRule, float]]:
    """Real usage minus what was reserved, per token rule (input counts cache writes,
    as the provider's input-token limit does; cache reads are not counted)."""
    used_input = usage.input_tokens + usage.cache_creation_input_tokens
    rs, oks, costs = reservation.rules, reservation.oks, reservation.costs
    out = []
    for i in rs.token_indexes:
        if oks[i]:
            actual = used_input if rs.dimensions[i] == "input_tokens" else usage.output_tokens
            delta = actual - costs[i]
            if delta:
                out.append((rs.rules[i], float(delta)))
    return out


@dataclass(frozen=True, slots=True)
class Status:
    healthy: bool
    backend: str
    # Fixed text only, for /readyz (never a Redis error message: it may carry the URL).
    reason: str = ""


class Limiter(ABC):
    """A rate-limit backend. Implementations: `memory`, `redis` (run `Shielded`: a call
    that waits on I/O must not be cut short by its caller's cancellation)."""

    @abstractmethod
    async def acquire(self, rules: Sequence[LimitRule], cost: Cost, now: float) -> Admission:
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
    async def in_flight(self, rule: LimitRule, now: float) -> int:
        """Slots held against a concurrency rule (for tests and operators)."""

    def status(self) -> Status:
        return Status(True, "memory")

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
