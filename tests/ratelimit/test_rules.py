from __future__ import annotations

from gateway.auth.principal import ANONYMOUS
from gateway.ratelimit.rules import Cost, RuleSet, rule_cost, rules_for
from gateway.ratelimit.settings import RateLimitSettings

from .test_backends import principal

SETTINGS = RateLimitSettings.model_validate(
    {
        "burst": 2,
        "defaults": {"rpm": 60, "output_tpm": 1000, "shadow": ["output_tpm"]},
        "teams": {"t1": {"concurrency": 4, "burst": 1}},
        "team_default": {"rpm": 1000},
    }
)


def test_key_claims_override_defaults_and_team_limits_apply() -> None:
    rules = rules_for(SETTINGS, principal(rpm=5, input_tpm=900), tokens=True)
    by = {r.name: r for r in rules}
    assert set(by) == {"key_rpm", "key_input_tpm", "key_output_tpm", "team_concurrency"}
    assert by["key_rpm"].limit == 5
    assert by["key_rpm"].capacity == 10
    assert by["key_rpm"].rate == 5 / 60
    assert by["key_output_tpm"].limit == 1000
    assert by["key_output_tpm"].shadow
    assert by["team_concurrency"].capacity == 4
    assert by["team_concurrency"].rate == 0


def test_unlisted_team_uses_team_default() -> None:
    rules = rules_for(SETTINGS, principal(team="other"), tokens=False)
    assert [(r.name, r.limit) for r in rules] == [("key_rpm", 60), ("team_rpm", 1000)]


def test_token_rules_only_for_generating_endpoints() -> None:
    assert all(
        r.dimension in ("requests", "concurrency")
        for r in rules_for(SETTINGS, principal(), tokens=False)
    )


def test_anonymous_principal_gets_defaults() -> None:
    names = [r.name for r in rules_for(SETTINGS, ANONYMOUS, tokens=True)]
    assert names == ["key_rpm", "key_output_tpm", "team_rpm"]


def test_keys_are_distinct_per_key_and_shared_per_team() -> None:
    a = {r.name: r.key for r in rules_for(SETTINGS, principal("a"), tokens=False)}
    b = {r.name: r.key for r in rules_for(SETTINGS, principal("b"), tokens=False)}
    assert a["key_rpm"] != b["key_rpm"]
    assert a["team_concurrency"] == b["team_concurrency"]


def test_costs() -> None:
    rules = {r.name: r for r in rules_for(SETTINGS, principal(input_tpm=100), tokens=True)}
    cost = Cost(input_tokens=5000, output_tokens=300)
    assert rule_cost(rules["key_input_tpm"], cost) == 200  # clamped to the bucket (burst 2)
    assert rule_cost(rules["key_output_tpm"], cost) == 300
    assert rule_cost(rules["key_rpm"], cost) == 1


def test_rule_set_costs_match_rule_cost_for_every_kind() -> None:
    settings = RateLimitSettings.model_validate(
        {"burst": 2, "defaults": {"rpm": 60, "concurrency": 3}, "team_default": {"input_tpm": 50}}
    )
    for limits in ({"input_tpm": 100, "output_tpm": 10}, {"input_tpm": 0}, {}):
        rules = rules_for(settings, principal("k1", "t1", **limits), tokens=True)
        assert isinstance(rules, RuleSet)
        for cost in (Cost(), Cost(input_tokens=7, output_tokens=3), Cost(input_tokens=5000)):
            assert rules.costs(cost) == [rule_cost(r, cost) for r in rules]


def test_rule_set_lays_out_its_rules_once() -> None:
    rules = rules_for(SETTINGS, principal(input_tpm=100), tokens=True)
    assert RuleSet.of(rules) is rules
    assert RuleSet.of(list(rules)).rules == rules.rules == tuple(rules)
    assert rules.keys == tuple(r.key for r in rules)
    assert rules.limit_texts == tuple(str(r.limit) for r in rules)
    assert [rules[i].name for i in rules.token_indexes] == ["key_input_tpm", "key_output_tpm"]
    assert [rules[i].name for i in rules.slot_indexes] == ["team_concurrency"]
    assert RuleSet().costs(Cost()) == []
