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

from gateway.ratelimit.base import Decision, RuleResult

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


def rate_headers(decision: Decision, style: str = "anthropic") -> dict[str, str]:
    names = _OPENAI_NAMES if style == "openai" else _HEADER_NAMES
    tightest: dict[str, RuleResult] = {}
    for res in decision.results:
        for name in names.get(res.rule.dimension, ()):
            best = tightest.get(name)
            if best is None or res.remaining < best.remaining:
                tightest[name] = res
    out: dict[str, str] = {}
    for name, res in tightest.items():
        full_in = res.level / res.rule.rate if res.rule.rate > 0 else 0.0
        if style == "openai":
            out[f"x-ratelimit-limit-{name}"] = str(res.rule.limit)
            out[f"x-ratelimit-remaining-{name}"] = str(res.remaining)
            out[f"x-ratelimit-reset-{name}"] = duration(full_in)
        else:
            prefix = f"anthropic-ratelimit-{name}"
            out[f"{prefix}-limit"] = str(res.rule.limit)
            out[f"{prefix}-remaining"] = str(res.remaining)
            out[f"{prefix}-reset"] = rfc3339(decision.now + full_in)
    return out


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


def blocking(decision: Decision) -> RuleResult:
    """The refused rule the client waits longest for (never-fitting ones first)."""
    return max(decision.refused, key=lambda r: r.wait())


def retry_after(decision: Decision) -> int | None:
    """Whole seconds until every refused rule fits; None if one never can."""
    wait = blocking(decision).wait()
    if math.isinf(wait):
        return None
    return max(1, math.ceil(wait))


def refusal_message(decision: Decision) -> str:
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
