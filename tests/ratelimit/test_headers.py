from __future__ import annotations

import random

from gateway.ratelimit.base import Admission, RuleResult, admit, costs_of
from gateway.ratelimit.headers import (
    duration,
    rate_headers,
    refusal_message,
    retry_after,
    rfc3339,
)
from gateway.ratelimit.rules import Cost, rules_for
from gateway.ratelimit.settings import RateLimitSettings

from .test_backends import T0, principal

SETTINGS = RateLimitSettings.model_validate({"teams": {"t1": {"rpm": 20, "output_tpm": 500}}})


def test_headers_show_the_tightest_of_key_and_team() -> None:
    rules = rules_for(SETTINGS, principal(rpm=10, input_tpm=3000, output_tpm=6000), True)
    cost = Cost(input_tokens=300, output_tokens=100)
    levels = [4.0, 0.0, 0.0, 15.0, 0.0]  # key rpm, key in, key out, team rpm, team out
    d = admit(rules, [1, 300, 100, 1, 100], levels, T0, "r")
    assert [r.rule.name for r in d.results] == [
        "key_rpm",
        "key_input_tpm",
        "key_output_tpm",
        "team_rpm",
        "team_output_tpm",
    ]
    assert cost.requests == 1
    h = rate_headers(d)
    assert h["anthropic-ratelimit-requests-limit"] == "20"  # team: 4 left vs key 5 left
    assert h["anthropic-ratelimit-requests-remaining"] == "4"
    assert h["anthropic-ratelimit-requests-reset"] == rfc3339(T0 + 16 * 3)
    assert h["anthropic-ratelimit-input-tokens-remaining"] == "2700"
    assert h["anthropic-ratelimit-output-tokens-limit"] == "500"
    assert h["anthropic-ratelimit-output-tokens-remaining"] == "400"
    assert h["anthropic-ratelimit-tokens-limit"] == "500"  # output (team) is the tighter
    assert h["anthropic-ratelimit-tokens-remaining"] == "400"
    assert len(h) == 12


def test_rfc3339_rounds_up_to_whole_seconds_in_utc() -> None:
    assert rfc3339(1_800_000_000.2) == "2027-01-15T08:00:01Z"


def test_retry_after_whole_seconds_at_least_one() -> None:
    rules = rules_for(SETTINGS, principal(rpm=600), False)
    d = admit(rules, [1, 1], [600.0, 0.0], T0, "r")  # 0.1 s until the key fits
    assert retry_after(d) == 1
    d = admit(rules, [1, 1], [0.0, 20.5], T0, "r")  # team: 1.5 tokens at 1/3 s → 4.5 s
    assert retry_after(d) == 5
    assert refusal_message(d) == "Rate limit of 20 requests per minute for this team exceeded."


def test_never_fitting_request_has_no_retry_after() -> None:
    rules = rules_for(SETTINGS, principal(output_tpm=1000), True)
    costs = costs_of(rules, Cost(output_tokens=800))  # fits the key's 1000, not the team's 500
    d = admit(rules, costs, [0.0] * len(rules), T0, "r")
    assert retry_after(d) is None
    assert refusal_message(d) == (
        "max_tokens exceeds the rate limit of 500 output tokens per minute for this team; "
        "it cannot succeed as sent."
    )


def test_openai_style_headers_and_durations() -> None:
    rules = rules_for(SETTINGS, principal(rpm=10, input_tpm=3000, output_tpm=6000), True)
    d = admit(rules, [1, 300, 100, 1, 100], [4.0, 0.0, 0.0, 15.0, 0.0], T0, "r")
    h = rate_headers(d, "openai")
    assert h == {
        "x-ratelimit-limit-requests": "20",
        "x-ratelimit-remaining-requests": "4",
        "x-ratelimit-reset-requests": "48s",
        "x-ratelimit-limit-tokens": "500",
        "x-ratelimit-remaining-tokens": "400",
        "x-ratelimit-reset-tokens": "12s",
    }
    assert [duration(s) for s in (0, 0.0172, 1, 59.2, 60, 361)] == [
        "0s",
        "18ms",
        "1s",
        "1m0s",
        "1m0s",
        "6m1s",
    ]


def test_both_styles_from_one_rule_set_and_decision() -> None:
    # Each style's header layout is kept on the rule set: one must not serve the other.
    rules = rules_for(SETTINGS, principal(rpm=10, input_tpm=3000, output_tpm=6000), True)
    d = admit(rules, [1, 300, 100, 1, 100], [4.0, 0.0, 0.0, 15.0, 0.0], T0, "r")
    for _ in range(2):
        assert set(rate_headers(d, "openai")) == {
            f"x-ratelimit-{what}-{name}"
            for what in ("limit", "remaining", "reset")
            for name in ("requests", "tokens")
        }
        anthropic = rate_headers(d)
        assert len(anthropic) == 12
        assert anthropic["anthropic-ratelimit-requests-remaining"] == "4"


def test_headers_match_each_rule_results_remaining_and_reset() -> None:
    # The header loop reads the decision's arrays; RuleResult is the reference.
    rules = rules_for(SETTINGS, principal(rpm=10, input_tpm=3000, output_tpm=6000), True)
    for levels in ([4.0, 0.0, 0.0, 15.0, 0.0], [0.0, 2999.5, 5999.0, 0.0, 499.0]):
        d = admit(rules, [1, 0, 0, 1, 0], levels, T0, "r")
        h = rate_headers(d)
        for dim, name in (("input_tokens", "input-tokens"), ("requests", "requests")):
            res = min((r for r in d.results if r.rule.dimension == dim), key=lambda r: r.remaining)
            assert h[f"anthropic-ratelimit-{name}-remaining"] == str(res.remaining)
            assert h[f"anthropic-ratelimit-{name}-reset"] == rfc3339(T0 + res.level / res.rule.rate)


def test_no_rules_no_headers() -> None:
    assert rate_headers(admit([], [], [], T0, "r")) == {}
    assert rate_headers(admit([], [], [], T0, "r"), "openai") == {}


def reference_headers(d: Admission, style: str) -> dict[str, str]:
    """The headers as first written, one RuleResult at a time: the content (and order)
    the request path's loop over the decision's arrays must reproduce."""
    names = (
        {"requests": ("requests",), "input_tokens": ("tokens",), "output_tokens": ("tokens",)}
        if style == "openai"
        else {
            "requests": ("requests",),
            "input_tokens": ("input-tokens", "tokens"),
            "output_tokens": ("output-tokens", "tokens"),
        }
    )
    tightest: dict[str, RuleResult] = {}
    for res in d.results:
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
            out[f"anthropic-ratelimit-{name}-limit"] = str(res.rule.limit)
            out[f"anthropic-ratelimit-{name}-remaining"] = str(res.remaining)
            out[f"anthropic-ratelimit-{name}-reset"] = rfc3339(d.now + full_in)
    return out


def test_headers_equal_the_per_result_reference_in_content_and_order() -> None:
    rng = random.Random(3)
    settings = RateLimitSettings.model_validate(
        {"teams": {"t1": {"rpm": 20, "input_tpm": 800, "output_tpm": 500, "concurrency": 3}}}
    )
    rules = rules_for(
        settings, principal(rpm=10, input_tpm=3000, output_tpm=600, concurrency=2), True
    )
    for _ in range(300):
        levels = [rng.uniform(0, r.capacity * 1.2) for r in rules]
        costs = costs_of(
            rules, Cost(input_tokens=rng.randrange(500), output_tokens=rng.randrange(99))
        )
        d = admit(rules, costs, levels, T0 + rng.uniform(0, 100), "r")
        for style in ("anthropic", "openai"):
            got = rate_headers(d, style)
            assert list(got.items()) == list(reference_headers(d, style).items())
