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

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from gateway.routing.breaker import Breaker
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

    def choose(self, allowed: Restriction, tried: Collection[T] = ()) -> T | None:
        """An eligible target, its breaker's slot taken (`allow`); None when there is none."""
        now = self.clock()
        single = self._single
        if single is not None:  # PERF: a pool of one skips the walk (bench: pool)
            ok = single not in tried and (not allowed or matches(single.labels, allowed))
            return single if ok and single.breaker.allow(now) else None
        group: list[T] = []
        best = -1
        for t in self.targets:
            if best >= 0 and t.priority != best:
                break
            if t in tried or not t.breaker.available(now):
                continue
            if allowed and not matches(t.labels, allowed):
                continue
            best = t.priority
            group.append(t)
        if not group:
            return None
        pick = group[0] if len(group) == 1 else self._weighted(group)
        pick.breaker.allow(now)
        return pick

    def _weighted(self, group: list[T]) -> T:
        total = sum(t.weight for t in group)
        point = self._random() * total
        for t in group:
            point -= t.weight
            if point < 0:
                return t
        return group[-1]
