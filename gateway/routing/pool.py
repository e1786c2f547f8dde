"""Which target of an upstream serves an attempt. Pure: no I/O; time and randomness injected.

- Eligible: carries every label of the request's restriction, its breaker lets a
  request through now, and this request has not tried it yet.
- Among the eligible, only the best (lowest) priority is considered; within it,
  a weighted random choice. A higher priority gets traffic only when nothing of
  a lower one is eligible.
- Nothing eligible: `None`. The caller answers 503; it never widens the
  restriction (residency) and never sends to an open breaker.

A restriction is a tuple of (label, value) pairs, all of which must match. Two
sources add up (team config and a key's claim), so a conflict (`region=eu` and
`region=us`) is a restriction nothing satisfies, which is the safe reading.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Collection, Mapping, Sequence
from itertools import accumulate, groupby
from typing import Generic, Protocol, TypeVar

from gateway.routing.breaker import CLOSED, Breaker
from gateway.routing.budget import RetryBudget

Restriction = tuple[tuple[str, str], ...]
UNRESTRICTED: Restriction = ()


class Candidate(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def weight(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def breaker(self) -> Breaker: ...


T = TypeVar("T", bound=Candidate)


def matches(labels: Mapping[str, str], restriction: Restriction) -> bool:
    return all(labels.get(k) == v for k, v in restriction)


def restriction(*sources: Mapping[str, str] | Restriction | None) -> Restriction:
    """The label pairs of every source, sorted (a stable cache key); conflicts kept."""
    pairs: set[tuple[str, str]] = set()
    for source in sources:
        if source:
            pairs.update(source.items() if isinstance(source, Mapping) else source)
    return tuple(sorted(pairs))


class TargetPool(Generic[T]):
    """The targets of one upstream, its retry budget, and the choice between them."""

    def __init__(
        self,
        targets: Sequence[T],
        budget: RetryBudget,
        *,
        clock: Callable[[], float],
        random: Callable[[], float],
    ) -> None:
        # Stable sort: within a priority, config order (ties in the weighted walk).
        self.targets = sorted(targets, key=lambda t: t.priority)
        self.budget = budget
        self.clock = clock
        self._random = random
        self._single = self.targets[0] if len(self.targets) == 1 else None
        # Priority groups, best first, each with its cumulative weights for `bisect`.
        self._groups: list[tuple[tuple[T, ...], tuple[int, ...], int]] = []
        for _, members in groupby(self.targets, key=lambda t: t.priority):
            group = tuple(members)
            cumulative = tuple(accumulate(t.weight for t in group))
            self._groups.append((group, cumulative, cumulative[-1]))

    def choose(self, allowed: Restriction, tried: Collection[T] = ()) -> T | None:
        """An eligible target, its breaker's slot taken (`allow`); None when there is none."""
        single = self._single
        if single is not None:  # PERF: a pool of one skips the walk (bench.pool_path)
            ok = single not in tried and (not allowed or matches(single.labels, allowed))
            return single if ok and single.breaker.allow(self.clock()) else None
        now = self.clock()
        for group, cumulative, total in self._groups:
            # PERF: draw among the whole group first and keep the draw when it is eligible
            # with a closed breaker, the usual case (-4 µs a request, bench.pool_path).
            # Drawing again among the eligible when it is not leaves every eligible
            # target its exact weighted share: w/W + (W_out/W)(w/W_in) = w/W_in.
            pick = group[bisect_right(cumulative, self._random() * total)]
            if (
                pick.breaker.state == CLOSED
                and pick not in tried
                and (not allowed or matches(pick.labels, allowed))
            ):
                return pick
            eligible = [
                t
                for t in group
                if t not in tried
                and (not allowed or matches(t.labels, allowed))
                and t.breaker.available(now)
            ]
            if eligible:
                pick = eligible[0] if len(eligible) == 1 else self._weighted(eligible)
                pick.breaker.allow(now)
                return pick
        return None

    def _weighted(self, group: list[T]) -> T:
        total = sum(t.weight for t in group)
        point = self._random() * total
        for t in group:
            point -= t.weight
            if point < 0:
                return t
        return group[-1]
