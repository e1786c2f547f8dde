"""What a rate-limit decision tells the client: response headers and the 429. Pure.

Headers describe this key's own limits, the most constraining of its key and
team rules per kind, in the provider's own names so its SDK and dashboards
understand them:

- Anthropic: `anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-`
  `{limit,remaining,reset}` (reset: RFC 3339, when the bucket is full again;
  tokens: the tighter of input and output);
- OpenAI: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (reset: a
  duration such as `6m0s`; tokens: the tighter of input and output).

`retry-after` is in whole seconds, at least 1, so the SDKs' backoff waits long enough.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime

from gateway.ratelimit import gcra
from gateway.ratelimit.base import Admission, RuleResult
from gateway.ratelimit.rules import RuleSet

# Dimension -> header names it feeds; `tokens` is the tighter of input and output
# (Anthropic's `anthropic-ratelimit-tokens-*`, OpenAI's only token header).
_HEADER_NAMES = {
    "requests": ("requests",),
    "input_tokens": ("input-tokens", "tokens"),
    "output_tokens": ("output-tokens", "tokens"),
}
_OPENAI_NAMES = {
    "requests": ("requests",),
    "input_tokens": ("tokens",),
    "output_tokens": ("tokens",),
}
_LIMIT_TEXT = {
    "requests": "requests per minute",
    "input_tokens": "input tokens per minute",
    "output_tokens": "output tokens per minute",
    "concurrency": "concurrent requests",
}


# Per header name: its three header names (limit, remaining, reset) and the indexes of
# the rules that can feed it (the first, the others); in the order names first appear
# among the rules.
Plan = tuple[tuple[tuple[str, str, str], int, tuple[int, ...]], ...]


def rate_headers(decision: Admission, style: str = "anthropic") -> dict[str, str]:
    rules = decision.rules
    openai = style == "openai"
    memo = "headers:openai" if openai else "headers:anthropic"
    planned: tuple[Plan, dict[str, str]] | None = rules.memo.get(memo)
    if planned is None:
        planned = rules.memo[memo] = _plan(rules, openai)
    plan, template = planned
    caps, rates, limits, levels = rules.caps, rules.rates, rules.limit_texts, decision.levels
    now, eps, floor, ceil = decision.now, gcra.EPS, math.floor, math.ceil
    # Every name already in place, in order: values are replaced, the dict never grows.
    out = template.copy()
    for (limit_name, remaining_name, reset_name), best, others in plan:
        # The most constraining rule (the first of equals), as RuleResult.remaining.
        least = floor(caps[best] - levels[best] + eps)
        if least < 0:
            least = 0
        for i in others:
            left = floor(caps[i] - levels[i] + eps)
            if left < 0:
                left = 0
            if left < least:
                best, least = i, left
        rate = rates[best]
        full_in = levels[best] / rate if rate > 0 else 0.0
        out[limit_name] = limits[best]
        out[remaining_name] = str(least)
        out[reset_name] = duration(full_in) if openai else _rfc3339(ceil(now + full_in))
    return out


def _plan(rules: RuleSet, openai: bool) -> tuple[Plan, dict[str, str]]:
    names = _OPENAI_NAMES if openai else _HEADER_NAMES
    candidates: dict[str, list[int]] = {}
    for i, rule in enumerate(rules):
        for name in names.get(rule.dimension, ()):
            candidates.setdefault(name, []).append(i)
    plan = []
    for name, indexes in candidates.items():
        if openai:
            header = (
                f"x-ratelimit-limit-{name}",
                f"x-ratelimit-remaining-{name}",
                f"x-ratelimit-reset-{name}",
            )
        else:
            prefix = f"anthropic-ratelimit-{name}"
            header = (f"{prefix}-limit", f"{prefix}-remaining", f"{prefix}-reset")
        plan.append((header, indexes[0], tuple(indexes[1:])))
    return tuple(plan), dict.fromkeys((name for header, _, _ in plan for name in header), "")


def duration(seconds: float) -> str:
    """OpenAI's reset format: `0s`, `17ms`, `12s`, `6m0s`."""
    if 0 < seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def rfc3339(ts: float) -> str:
    return _rfc3339(math.ceil(ts))


@functools.lru_cache(maxsize=1024)
def _rfc3339(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def blocking(decision: Admission) -> RuleResult:
    """The refused rule the client waits longest for (never-fitting ones first)."""
    return max(decision.refused, key=lambda r: r.wait())


def retry_after(decision: Admission) -> int | None:
    """Whole seconds until every refused rule fits; None if one never can."""
    wait = blocking(decision).wait()
    if math.isinf(wait):
        return None
    return max(1, math.ceil(wait))


def refusal_message(decision: Admission) -> str:
    res = blocking(decision)
    scope = "this API key" if res.rule.scope == "key" else "this team"
    what = _LIMIT_TEXT[res.rule.dimension]
    if math.isinf(res.wait()):
        asked = "max_tokens" if res.rule.dimension == "output_tokens" else "This request"
        return (
            f"{asked} exceeds the rate limit of {res.rule.limit} {what} for {scope}; "
            "it cannot succeed as sent."
        )
    return f"Rate limit of {res.rule.limit} {what} for {scope} exceeded."
