"""Which limits apply to a request, and what it costs against each. Pure.

A request is checked against up to eight rules: the key's and the team's
requests/min, input tokens/min, output tokens/min and concurrent requests.
The key's values come from its claims (`Principal.limits`), else from
`ratelimit.defaults`; the team's from `ratelimit.teams[team]`, else
`ratelimit.team_default`.

Storage keys share one Redis Cluster hash tag per team (`{t.<team>}`): a key
belongs to exactly one team, so all eight buckets of a request live in one
slot and one Lua script checks and reserves them atomically, in one round
trip, with no two-phase rollback. The team bucket is touched by every request
of the team anyway, so co-locating its keys' buckets adds no new hot spot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, overload

from gateway.auth.principal import Principal
from gateway.ratelimit.settings import LimitSpec, RateLimitSettings

if TYPE_CHECKING:
    from gateway.ratelimit.headers import HeaderPlan

# (setting name, dimension) in header order.
KINDS = (
    ("rpm", "requests"),
    ("input_tpm", "input_tokens"),
    ("output_tpm", "output_tokens"),
    ("concurrency", "concurrency"),
)
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True, slots=True)
class LimitRule:
    # Bounded metric label: "<scope>_<setting>", e.g. "key_rpm", "team_output_tpm".
    name: str
    scope: str  # "key" | "team"
    dimension: str  # "requests" | "input_tokens" | "output_tokens" | "concurrency"
    key: str  # storage key
    limit: int  # per minute, or concurrent slots
    capacity: float
    rate: float  # per second; 0 for concurrency
    shadow: bool = False

    @property
    def concurrent(self) -> bool:
        return self.dimension == "concurrency"


class Cost(NamedTuple):
    """What one request asks of its rules (immutable)."""

    requests: int = 1
    input_tokens: int = 0
    output_tokens: int = 0


class RuleSet(Sequence[LimitRule]):
    """The rules of one request, with the per-rule values read on every request laid out
    once as parallel tuples (rule sets are memoised per key by the service, so this is paid
    once per key and config, not per request). Any sequence of rules works where a
    RuleSet is expected (`RuleSet.of`).

    PERF: a class with slots rather than a tuple subclass: an attribute of a tuple
    subclass lives in a per-instance dict that the interpreter cannot specialise its
    lookups for: 0.46 µs per request on the memory backend's loop alone, bench.limits_path
    +22.6 -> +20.8 µs (e1d01bf).
    """

    __slots__ = (
        "_inputs",
        "_outputs",
        "_unit",
        "anthropic_headers",
        "caps",
        "concurrent",
        "dimensions",
        "keys",
        "limit_texts",
        "names",
        "openai_headers",
        "rates",
        "rules",
        "shadows",
        "slot_indexes",
        "token_indexes",
    )

    def __init__(self, rules: Iterable[LimitRule] = ()) -> None:
        self.rules = rs = tuple(rules)
        self.names = tuple(r.name for r in rs)
        self.limit_texts = tuple(str(r.limit) for r in rs)
        self.keys = tuple(r.key for r in rs)
        self.caps = tuple(r.capacity for r in rs)
        self.rates = tuple(r.rate for r in rs)
        self.shadows = tuple(r.shadow for r in rs)
        self.concurrent = tuple(r.concurrent for r in rs)
        self.dimensions = tuple(r.dimension for r in rs)
        tokens = tuple(d in ("input_tokens", "output_tokens") for d in self.dimensions)
        # Indexes of the token rules (input, output) and of the concurrency rules.
        self.token_indexes = tuple(i for i, t in enumerate(tokens) if t)
        self.slot_indexes = tuple(i for i, c in enumerate(self.concurrent) if c)
        # The response headers of each style, planned by `headers.rate_headers` at first use.
        self.anthropic_headers: HeaderPlan | None = None
        self.openai_headers: HeaderPlan | None = None
        # For `costs`: 1.0 per request or slot rule (0.0 placeholders for token rules), then
        # where the input tokens go (clamped to the bucket, see `rule_cost`) and the output.
        self._unit = tuple(0.0 if t else 1.0 for t in tokens)
        self._inputs = tuple(
            (i, int(r.capacity) if r.capacity >= 1 else None)
            for i, r in enumerate(rs)
            if r.dimension == "input_tokens"
        )
        self._outputs = tuple(i for i, r in enumerate(rs) if r.dimension == "output_tokens")

    @classmethod
    def of(cls, rules: Iterable[LimitRule]) -> RuleSet:
        return rules if isinstance(rules, RuleSet) else cls(rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[LimitRule]:
        return iter(self.rules)

    @overload
    def __getitem__(self, index: int) -> LimitRule: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[LimitRule, ...]: ...

    def __getitem__(self, index: int | slice) -> LimitRule | tuple[LimitRule, ...]:
        return self.rules[index]

    def __repr__(self) -> str:
        return f"RuleSet({list(self.rules)!r})"

    def costs(self, cost: Cost) -> list[float]:
        """`rule_cost` of every rule."""
        # PERF: from the layout, not a rule_cost call per rule: 1.10 -> 0.53 µs for the
        # bench key's 4 rules (timeit; `python -m bench.limits_path --parts` shows the sum).
        out = list(self._unit)
        tokens = cost.input_tokens
        for i, clamp in self._inputs:
            out[i] = float(tokens if clamp is None else min(tokens, clamp))
        if self._outputs:
            tokens_out = float(cost.output_tokens)
            for i in self._outputs:
                out[i] = tokens_out
        return out


def rule_cost(rule: LimitRule, cost: Cost) -> float:
    if rule.dimension == "input_tokens":
        # Our estimate, not the client's declaration: an estimate above a whole bucket
        # reserves the whole bucket (admitted when it is full) instead of refusing forever;
        # reconciliation then charges the real count.
        # (A zero limit from a key's claims blocks: nothing is clamped to fit it.)
        if rule.capacity < 1:
            return float(cost.input_tokens)
        return float(min(cost.input_tokens, int(rule.capacity)))
    if rule.dimension == "output_tokens":
        return float(cost.output_tokens)
    return 1.0


def rules_for(settings: RateLimitSettings, principal: Principal, tokens: bool) -> RuleSet:
    """The rules of one request; `tokens` is false for endpoints that generate nothing."""
    tag = f"{settings.redis_key_prefix}:{{t.{_safe(principal.team)}}}"
    claims = principal.limits
    key_values = {
        "rpm": claims.rpm,
        "input_tpm": claims.input_tpm,
        "output_tpm": claims.output_tpm,
        "concurrency": claims.concurrency,
    }
    team_spec = settings.teams.get(principal.team, settings.team_default)
    out: list[LimitRule] = []
    scopes: tuple[tuple[str, LimitSpec, str], ...] = (
        ("key", settings.defaults, f"{tag}:k.{_safe(principal.key_id)}"),
        ("team", team_spec, f"{tag}:team"),
    )
    for scope, spec, base in scopes:
        burst = spec.burst if spec.burst is not None else settings.burst
        for setting, dimension in KINDS:
            if not tokens and dimension in ("input_tokens", "output_tokens"):
                continue
            limit = getattr(spec, setting)
            if scope == "key" and key_values[setting] is not None:
                limit = key_values[setting]
            if limit is None:
                continue
            concurrent = dimension == "concurrency"
            out.append(
                LimitRule(
                    name=f"{scope}_{setting}",
                    scope=scope,
                    dimension=dimension,
                    key=f"{base}:{setting}",
                    limit=limit,
                    capacity=float(limit) if concurrent else limit * burst,
                    rate=0.0 if concurrent else max(0, limit) / 60.0,
                    shadow=setting in spec.shadow,
                )
            )
    return RuleSet(out)


def _safe(value: str) -> str:
    """Storage-key-safe form: as is when plain, else a hash (no braces, no separators)."""
    if _SAFE.match(value):
        return value
    return "h" + hashlib.blake2b(value.encode(), digest_size=10).hexdigest()
