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
from gateway.ratelimit.base import Admission, Limiter, Reservation, deltas
from gateway.ratelimit.rules import Cost, LimitRule, RuleSet

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
    def __init__(self, lease_seconds: float = 960.0) -> None:
        self._lease = lease_seconds
        # key -> (level, ts, rate)
        self._buckets: dict[str, tuple[float, float, float]] = {}
        self._slots: dict[str, _Slots] = {}
        self._ops = 0
        # Reservation ids: this process's slots only, so a counter is unique enough.
        # PERF: an int, not a prefixed string: 0.08 vs 0.37 µs per reservation (insert +
        # pop), bench.limits_path +20.8 -> +20.4 µs (24112ff).
        self._ids = itertools.count(1)

    async def acquire(self, rules: Sequence[LimitRule], cost: Cost, now: float) -> Admission:
        # `base.admit` with the state read and written around it: one pass to check, one
        # to reserve (tests/ratelimit/test_memory.py holds it to `admit`).
        # PERF: fused rather than a call to `admit` between two loops over the state:
        # memory acquire + settle 7.5 -> 6.9 µs (medians of 8 alternating runs of
        # `python -m bench.limits_path --parts`).
        self._ops += 1
        if self._ops % _SWEEP_EVERY == 0:
            self._sweep(now)
        rs = rules if isinstance(rules, RuleSet) else RuleSet(rules)
        costs = rs.costs(cost)
        buckets, slots = self._buckets, self._slots
        drain, fits = gcra.drain, gcra.fits
        levels: list[float] = []
        oks: list[bool] = []
        allowed = True
        for key, rate, concurrent, cap, shadow, c in zip(
            rs.keys, rs.rates, rs.concurrent, rs.caps, rs.shadows, costs, strict=True
        ):
            if concurrent:
                held = slots.get(key)
                level = 0.0 if held is None else float(held.count(now))
            else:
                state = buckets.get(key)
                level = 0.0 if state is None else drain(state[0], state[1], rate, now)
            ok = fits(level, c, cap)
            if not ok and not shadow:
                allowed = False
            levels.append(level)
            oks.append(ok)
        if not allowed:
            return Admission(False, now, None, False, rs, costs, oks, levels)
        rid = next(self._ids)
        expiry = now + self._lease
        for i, (key, rate, concurrent) in enumerate(
            zip(rs.keys, rs.rates, rs.concurrent, strict=True)
        ):
            if not oks[i]:
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
        return Admission(True, now, Reservation(rid, rs, costs, oks), False, rs, costs, oks, levels)

    async def reconcile(self, reservation: Reservation, usage: Usage, now: float) -> None:
        if not reservation.reconciled:
            reservation.reconciled = True
            self._charge(reservation, usage, now)

    async def release(self, reservation: Reservation, now: float) -> None:
        if not reservation.released:
            reservation.released = True
            self._free(reservation)

    async def settle(self, reservation: Reservation, usage: Usage, now: float) -> None:
        # Both steps in one call; the slot is freed first: freeing cannot fail, so no
        # path leaves it held.
        if not reservation.released:
            reservation.released = True
            self._free(reservation)
        if not reservation.reconciled:
            reservation.reconciled = True
            self._charge(reservation, usage, now)

    def _charge(self, reservation: Reservation, usage: Usage, now: float) -> None:
        buckets, drain, adjust = self._buckets, gcra.drain, gcra.adjust
        for rule, delta in deltas(reservation, usage):
            key, rate = rule.key, rule.rate
            state = buckets.get(key)
            level = 0.0 if state is None else drain(state[0], state[1], rate, now)
            buckets[key] = (adjust(level, delta), now, rate)

    def _free(self, reservation: Reservation) -> None:
        rs, oks = reservation.rules, reservation.oks
        for i in rs.slot_indexes:
            if oks[i]:
                held = self._slots.get(rs.keys[i])
                if held is not None:
                    held.held.pop(reservation.id, None)

    async def in_flight(self, rule: LimitRule, now: float) -> int:
        return int(self._level(rule.key, rule.rate, rule.concurrent, now))

    def _level(self, key: str, rate: float, concurrent: bool, now: float) -> float:
        """A bucket's level at `now`, or the slots held against a concurrency rule."""
        if concurrent:
            held = self._slots.get(key)
            return 0.0 if held is None else float(held.count(now))
        state = self._buckets.get(key)
        return 0.0 if state is None else gcra.drain(state[0], state[1], rate, now)

    def _sweep(self, now: float) -> None:
        for key, (level, ts, rate) in list(self._buckets.items()):
            if gcra.drain(level, ts, rate, now) <= 0.0:
                del self._buckets[key]
        for key, held in list(self._slots.items()):
            if not held.count(now):
                del self._slots[key]
