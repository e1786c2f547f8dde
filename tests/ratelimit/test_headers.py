from __future__ import annotations

from gateway.ratelimit.base import costs_of, decide
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
    d = decide(rules, [1, 300, 100, 1, 100], levels, T0, "r")
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
    d = decide(rules, [1, 1], [600.0, 0.0], T0, "r")  # 0.1 s until the key fits
    assert retry_after(d) == 1
    d = decide(rules, [1, 1], [0.0, 20.5], T0, "r")  # team: 1.5 tokens at 1/3 s → 4.5 s
    assert retry_after(d) == 5
    assert refusal_message(d) == "Rate limit of 20 requests per minute for this team exceeded."


def test_never_fitting_request_has_no_retry_after() -> None:
    rules = rules_for(SETTINGS, principal(output_tpm=1000), True)
    costs = costs_of(rules, Cost(output_tokens=800))  # fits the key's 1000, not the team's 500
    d = decide(rules, costs, [0.0] * len(rules), T0, "r")
    assert retry_after(d) is None
    assert refusal_message(d) == (
        "max_tokens exceeds the rate limit of 500 output tokens per minute for this team; "
        "it cannot succeed as sent."
    )


def test_openai_style_headers_and_durations() -> None:
    rules = rules_for(SETTINGS, principal(rpm=10, input_tpm=3000, output_tpm=6000), True)
    d = decide(rules, [1, 300, 100, 1, 100], [4.0, 0.0, 0.0, 15.0, 0.0], T0, "r")
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
