"""Token-bucket arithmetic (GCRA-equivalent), pure: no clock, no I/O. The one place it
is written in Python: the memory backend, the admission and the headers call these.

A bucket is stored as `(level, ts)`: how much of its capacity was in use at
time `ts`. It drains continuously at `rate` per second, so a per-minute limit
L refills at L/60 per second instead of resetting at window edges (a fixed
window admits 2 x L around an edge; this admits at most `capacity` at once and
then exactly the rate). The Redis backend's Lua script mirrors these
functions line for line; the shared backend suite holds both to the same
numbers.

Clamps are written as comparisons; they give what `max(0.0, x)` gives (-0.0 and NaN
become 0.0).
"""

from __future__ import annotations

import math

# Costs and capacities are whole numbers, levels drift by float rounding as they drain:
# a request that fits exactly must not be refused for 1e-12 of a token.
EPS = 1e-6


def drain(level: float, ts: float, rate: float, now: float) -> float:
    """The level at `now` of a bucket that held `level` at `ts` (a clock that went back
    drains nothing)."""
    elapsed = now - ts
    if elapsed > 0.0:
        level -= elapsed * rate
    return level if level > 0.0 else 0.0


def fits(level: float, cost: float, capacity: float) -> bool:
    return level + cost <= capacity + EPS


def remaining(level: float, capacity: float) -> int:
    """Whole units still free (what the `remaining` headers say)."""
    left = math.floor(capacity - level + EPS)
    return left if left > 0 else 0


def wait_seconds(level: float, cost: float, capacity: float, rate: float) -> float:
    """Seconds until `cost` fits; `math.inf` if it never can (cost above capacity)."""
    if cost > capacity + EPS or rate <= 0:
        return math.inf
    return max(0.0, (level + cost - capacity) / rate)


def adjust(level: float, delta: float) -> float:
    """Reconciliation: charge (delta > 0) or refund (delta < 0); never below empty."""
    level += delta
    return level if level > 0.0 else 0.0


def empty_after(level: float, rate: float) -> float:
    """Seconds until the bucket is empty again (fully replenished)."""
    return level / rate if rate > 0 else 0.0
