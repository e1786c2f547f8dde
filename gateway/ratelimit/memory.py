"""The in-process backend: exact for one process (the default, no dependency).

Each method runs without awaiting, so on one event loop a check-and-reserve
over all rules is atomic by construction. Not shared between processes:
`serve --workers N` with N > 1 needs the Redis backend (config validation
says so).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from gateway.context import Usage
from gateway.ratelimit import gcra
from gateway.ratelimit.base import Decision, Limiter, Reservation, deltas
from gateway.ratelimit.rules import Cost, Rule, RuleSet

# Drained buckets and empty slot sets are dropped every this many acquires (bounded memory).
_SWEEP_EVERY = 4096


class _Slots:
    """The concurrency slots held against one rule: reservation id -> lease expiry."""

    __slots__ = ("held", "next_expiry")

    def __init__(self) -> None:
        self.held: dict[str | int, float] = {}
        # No lease ends before this: a lookup scans for expired leases only once one may
        # have (a request that never released: a bug or a crash), not on every request.
        self.next_expiry = math.inf

    def count(self, now: float) -> int:
        if self.next_expiry <= now:
            held = self.held
            for rid in [rid for rid, expiry in held.items() if expiry <= now]:
                del held[rid]
            self.next_expiry = min(held.values(), default=math.inf)
        return len(self.held)


class MemoryLimiter(Limiter):
    suspends = False

    def __init__(self, lease_seconds: float = 960.0) -> None:
        self._lease = lease_seconds
        # key -> (level, ts, rate)
        self._buckets: dict[str, tuple[float, float, float]] = {}
        self._slots: dict[str, _Slots] = {}
        self._ops = 0
        # Reservation ids: this process's slots only, so a counter is unique enough.
        self._ids = itertools.count(1)

    async def acquire(self, rules: Sequence[Rule], cost: Cost, now: float) -> Decision:
        return self.acquire_now(rules, cost, now)

    def acquire_now(self, rules: Sequence[Rule], cost: Cost, now: float) -> Decision:
        # `base.decide` fused with reading and writing the state: one pass to check, one
        # to reserve (tests/ratelimit/test_memory.py holds it to `decide`).
        self._ops += 1
        if self._ops % _SWEEP_EVERY == 0:
            self._sweep(now)
        rs = rules if isinstance(rules, RuleSet) else RuleSet(rules)
        costs = rs.costs(cost)
        buckets, slots = self._buckets, self._slots
        levels: list[float] = []
        oks: list[bool] = []
        allowed = True
        for (key, rate, concurrent, bound, shadow), c in zip(rs.rows, costs, strict=False):
            if concurrent:
                held = slots.get(key)
                level = 0.0 if held is None else float(held.count(now))
            else:
                state = buckets.get(key)
                if state is None:
                    level = 0.0
                else:  # gcra.drain, inline: its two max() calls cost more than the rest
                    level, elapsed = state[0], now - state[1]
                    if elapsed > 0.0:
                        level -= elapsed * rate
                    if not level > 0.0:
                        level = 0.0
            ok = level + c <= bound  # gcra.fits
            if not ok and not shadow:
                allowed = False
            levels.append(level)
            oks.append(ok)
        if not allowed:
            return Decision(False, now, None, False, rs, costs, oks, levels)
        rid = next(self._ids)
        expiry = now + self._lease
        i = -1
        for (key, rate, concurrent, _, _), ok in zip(rs.rows, oks, strict=False):
            i += 1
            if not ok:
                continue  # a shadow rule that would refuse: counted, not reserved
            level = levels[i] = levels[i] + costs[i]
            if concurrent:
                held = slots.get(key)
                if held is None:
                    held = slots[key] = _Slots()
                held.held[rid] = expiry
                if expiry < held.next_expiry:
                    held.next_expiry = expiry
            else:
                buckets[key] = (level, now, rate)
        return Decision(True, now, Reservation(rid, rs, costs, oks), False, rs, costs, oks, levels)

    async def reconcile(self, reservation: Reservation, usage: Usage, now: float) -> None:
        if not reservation.reconciled:
            reservation.reconciled = True
            self._charge(reservation, usage, now)

    async def release(self, reservation: Reservation, now: float) -> None:
        if not reservation.released:
            reservation.released = True
            self._free(reservation)

    async def settle(self, reservation: Reservation, usage: Usage, now: float) -> None:
        self.settle_now(reservation, usage, now)

    def settle_now(self, reservation: Reservation, usage: Usage, now: float) -> bool:
        # Both steps in one call; the slot is freed first: freeing cannot fail, so no
        # path leaves it held.
        if not reservation.released:
            reservation.released = True
            self._free(reservation)
        if not reservation.reconciled:
            reservation.reconciled = True
            self._charge(reservation, usage, now)
        return True

    def _charge(self, reservation: Reservation, usage: Usage, now: float) -> None:
        buckets = self._buckets
        for rule, delta in deltas(reservation, usage):
            state = buckets.get(rule.key)
            level = 0.0
            if state is not None:  # gcra.drain, inline (as in acquire)
                level, elapsed = state[0], now - state[1]
                if elapsed > 0.0:
                    level -= elapsed * rule.rate
                if not level > 0.0:
                    level = 0.0
            level += delta  # gcra.adjust: never below empty
            buckets[rule.key] = (level if level > 0.0 else 0.0, now, rule.rate)

    def _free(self, reservation: Reservation) -> None:
        rs, oks = reservation.rules, reservation.oks
        for i in rs.slot_indexes:
            if oks[i]:
                held = self._slots.get(rs.keys[i])
                if held is not None:
                    held.held.pop(reservation.id, None)

    async def in_flight(self, rule: Rule, now: float) -> int:
        return int(self._level(rule, now))

    def _level(self, rule: Rule, now: float) -> float:
        if rule.concurrent:
            held = self._slots.get(rule.key)
            return 0.0 if held is None else float(held.count(now))
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
            if not held.count(now):
                del self._slots[key]
