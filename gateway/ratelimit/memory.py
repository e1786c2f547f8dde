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

from gateway.ratelimit import gcra
from gateway.ratelimit.base import Admission, Limiter, Reservation, admit, deltas
from gateway.ratelimit.rules import Cost, LimitRule, RuleSet
from gateway.usage import Usage

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

    def take(self, rid: str | int, expiry: float) -> None:
        self.held[rid] = expiry
        if expiry < self.next_expiry:
            self.next_expiry = expiry


class MemoryLimiter(Limiter):
    def __init__(self, lease_seconds: float = 960.0) -> None:
        self._lease = lease_seconds
        # key -> (level, ts, rate)
        self._buckets: dict[str, tuple[float, float, float]] = {}
        self._slots: dict[str, _Slots] = {}
        self._ops = 0
        # Reservation ids: this process's slots only, so a counter is unique enough.
        self._ids = itertools.count(1)

    async def acquire(self, rules: Sequence[LimitRule], cost: Cost, now: float) -> Admission:
        self._ops += 1
        if self._ops % _SWEEP_EVERY == 0:
            self._sweep(now)
        rs = RuleSet.of(rules)
        state = tuple(zip(rs.keys, rs.rates, rs.concurrent, strict=True))
        levels = [self._level(key, rate, concurrent, now) for key, rate, concurrent in state]
        admission = admit(rs, rs.costs(cost), levels, now, next(self._ids))
        reservation = admission.reservation
        if reservation is None:
            return admission
        expiry = now + self._lease
        buckets, slots = self._buckets, self._slots
        for (key, rate, concurrent), ok, level in zip(
            state, reservation.oks, admission.levels, strict=True
        ):
            if not ok:
                continue  # a shadow rule that would refuse: counted, not reserved
            if concurrent:
                held = slots.get(key)
                if held is None:
                    held = slots[key] = _Slots()
                held.take(reservation.id, expiry)
            else:
                buckets[key] = (level, now, rate)
        return admission

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
        for rule, delta in deltas(reservation, usage):
            level = self._level(rule.key, rule.rate, False, now)
            self._buckets[rule.key] = (gcra.adjust(level, delta), now, rule.rate)

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
