"""The in-process backend: exact for one process (the default, no dependency).

Each method runs without awaiting, so on one event loop a check-and-reserve
over all rules is atomic by construction. Not shared between processes:
`serve --workers N` with N > 1 needs the Redis backend (config validation
says so).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.ratelimit import gcra
from gateway.ratelimit.base import Decision, Limiter, Reservation, costs_of, decide, deltas, new_id
from gateway.ratelimit.rules import Cost, Rule
from gateway.usage import Usage

# Drained buckets and empty slot sets are dropped every this many acquires (bounded memory).
_SWEEP_EVERY = 4096


class MemoryLimiter(Limiter):
    suspends = False

    def __init__(self, lease_seconds: float = 960.0) -> None:
        self._lease = lease_seconds
        # key -> (level, ts, rate)
        self._buckets: dict[str, tuple[float, float, float]] = {}
        # key -> {reservation id: lease expiry}
        self._slots: dict[str, dict[str, float]] = {}
        self._ops = 0

    async def acquire(self, rules: Sequence[Rule], cost: Cost, now: float) -> Decision:
        self._ops += 1
        if self._ops % _SWEEP_EVERY == 0:
            self._sweep(now)
        costs = costs_of(rules, cost)
        levels = [self._level(r, now) for r in rules]
        decision = decide(rules, costs, levels, now, new_id())
        if decision.reservation is not None:
            for res in decision.results:
                if not res.applied:
                    continue
                if res.rule.concurrent:
                    self._slots.setdefault(res.rule.key, {})[decision.reservation.id] = (
                        now + self._lease
                    )
                else:
                    self._buckets[res.rule.key] = (res.level, now, res.rule.rate)
        return decision

    async def reconcile(self, reservation: Reservation, usage: Usage, now: float) -> None:
        if reservation.reconciled:
            return
        reservation.reconciled = True
        for rule, delta in deltas(reservation, usage):
            level = gcra.adjust(self._level(rule, now), delta)
            self._buckets[rule.key] = (level, now, rule.rate)

    async def release(self, reservation: Reservation, now: float) -> None:
        if reservation.released:
            return
        reservation.released = True
        for rule in reservation.slots:
            held = self._slots.get(rule.key)
            if held is not None:
                held.pop(reservation.id, None)

    async def in_flight(self, rule: Rule, now: float) -> int:
        return int(self._level(rule, now))

    def _level(self, rule: Rule, now: float) -> float:
        if rule.concurrent:
            held = self._slots.get(rule.key)
            if not held:
                return 0.0
            for rid in [rid for rid, expiry in held.items() if expiry <= now]:
                del held[rid]  # the lease of a request that never released (bug or crash)
            return float(len(held))
        state = self._buckets.get(rule.key)
        if state is None:
            return 0.0
        level, ts, _ = state
        return gcra.drain(level, ts, rule.rate, now)

    def _sweep(self, now: float) -> None:
        for key, (level, ts, rate) in list(self._buckets.items()):
            if gcra.drain(level, ts, rate, now) <= 0.0:
                del self._buckets[key]
        for key, held in list(self._slots.items()):
            if not any(expiry > now for expiry in held.values()):
                del self._slots[key]
