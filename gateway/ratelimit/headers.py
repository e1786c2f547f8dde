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
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class HeaderPlan:
    """Which headers a rule set's admissions carry in one style, planned once per rule set
    (rule sets are memoised per key): per header group, its three names (limit,
    remaining, reset) and the indexes of the rules that can feed it, in the order the
    names first appear among the rules."""

    groups: tuple[tuple[tuple[str, str, str], tuple[int, ...]], ...]
    # PERF: every name in place, copied per response (the dict never grows): rate_headers
    # 3.16 -> 2.86 µs in isolation (348e306; `python -m bench.limits_path --parts`).
    template: dict[str, str]


def rate_headers(decision: Admission, style: str = "anthropic") -> dict[str, str]:
    rules = decision.rules
    openai = style == "openai"
    plan = rules.openai_headers if openai else rules.anthropic_headers
    if plan is None:
        plan = _plan(rules, openai)
        if openai:
            rules.openai_headers = plan
        else:
            rules.anthropic_headers = plan
    caps, rates, limits, levels = rules.caps, rules.rates, rules.limit_texts, decision.levels
    remaining, empty_after, ceil = gcra.remaining, gcra.empty_after, math.ceil
    out = plan.template.copy()
    for (limit_name, remaining_name, reset_name), indexes in plan.groups:
        # The most constraining rule (the first of equals).
        best, least = -1, 0
        for i in indexes:
            left = remaining(levels[i], caps[i])
            if best < 0 or left < least:
                best, least = i, left
        full_in = empty_after(levels[best], rates[best])
        out[limit_name] = limits[best]
        out[remaining_name] = str(least)
        out[reset_name] = duration(full_in) if openai else _rfc3339(ceil(decision.now + full_in))
    return out


def _plan(rules: RuleSet, openai: bool) -> HeaderPlan:
    names = _OPENAI_NAMES if openai else _HEADER_NAMES
    candidates: dict[str, list[int]] = {}
    for i, rule in enumerate(rules):
        for name in names.get(rule.dimension, ()):
            candidates.setdefault(name, []).append(i)
    groups = []
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
        groups.append((header, tuple(indexes)))
    template = dict.fromkeys((name for header, _ in groups for name in header), "")
    return HeaderPlan(tuple(groups), template)


def duration(seconds: float) -> str:
    """OpenAI's reset format: `0s`, `17ms`, `12s`, `6m0s`."""
    if 0 < seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def rfc3339(ts: float) -> str:
    return _rfc3339(math.ceil(ts))


# PERF: a hit 0.12 µs, formatting 3.7 µs, up to 4 per response (timeit, whole seconds
# repeat within a second; `python -m bench.limits_path --parts`, rate_headers).
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
