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
from dataclasses import dataclass

from gateway.auth.principal import Principal
from gateway.ratelimit.settings import LimitSpec, RateLimitSettings

# (setting name, dimension) in header order.
KINDS = (
    ("rpm", "requests"),
    ("input_tpm", "input_tokens"),
    ("output_tpm", "output_tokens"),
    ("concurrency", "concurrency"),
)
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Rule:
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


@dataclass(frozen=True, slots=True)
class Cost:
    requests: int = 1
    input_tokens: int = 0
    output_tokens: int = 0


def rule_cost(rule: Rule, cost: Cost) -> float:
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


def rules_for(settings: RateLimitSettings, principal: Principal, tokens: bool) -> list[Rule]:
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
    out: list[Rule] = []
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
                Rule(
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
    return out


def _safe(value: str) -> str:
    """Storage-key-safe form: as is when plain, else a hash (no braces, no separators)."""
    if _SAFE.match(value):
        return value
    return "h" + hashlib.blake2b(value.encode(), digest_size=10).hexdigest()
