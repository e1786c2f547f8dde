"""What a rate-limit decision tells the client: response headers and the 429. Pure.

`anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining,reset}`
describe this key's own limits, the most constraining of its key and team
rules per kind (reset: RFC 3339, when the bucket is full again). `retry-after`
is in whole seconds, at least 1, so the SDKs' backoff waits long enough.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime

from gateway.ratelimit.base import Decision, RuleResult

_HEADER_NAMES = {
    "requests": "requests",
    "input_tokens": "input-tokens",
    "output_tokens": "output-tokens",
}
_LIMIT_TEXT = {
    "requests": "requests per minute",
    "input_tokens": "input tokens per minute",
    "output_tokens": "output tokens per minute",
    "concurrency": "concurrent requests",
}


def rate_headers(decision: Decision) -> dict[str, str]:
    tightest: dict[str, RuleResult] = {}
    for res in decision.results:
        name = _HEADER_NAMES.get(res.rule.dimension)
        if name is None:
            continue
        best = tightest.get(name)
        if best is None or res.remaining < best.remaining:
            tightest[name] = res
    out: dict[str, str] = {}
    for name, res in tightest.items():
        prefix = f"anthropic-ratelimit-{name}"
        out[f"{prefix}-limit"] = str(res.rule.limit)
        out[f"{prefix}-remaining"] = str(res.remaining)
        full_at = decision.now + (res.level / res.rule.rate if res.rule.rate > 0 else 0.0)
        out[f"{prefix}-reset"] = rfc3339(full_at)
    return out


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
