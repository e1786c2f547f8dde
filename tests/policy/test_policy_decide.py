"""The ZDR policy table, rule by rule: what is refused, what passes, what is rewritten."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.policy.decide import Decision, decide, parse_betas
from gateway.policy.rules import BY_ID, RULES, Request
from gateway.policy.settings import PolicySettings

STRICT = PolicySettings()
MSG = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": []}


def run(
    endpoint: str = "messages",
    body: dict[str, Any] | None = None,
    beta: str = "",
    *,
    provider: str = "anthropic",
    team: str | None = "t",
    settings: PolicySettings = STRICT,
    eligible: bool = True,
) -> Decision:
    headers = {"anthropic-beta": beta} if beta else {}
    return decide(endpoint, provider, headers, body, team, settings, zdr_eligible=eligible)


REFUSED = [
    ("batches", None, "", "anthropic.batches"),
    ("files", None, "", "anthropic.files"),
    ("skills", None, "", "anthropic.skills"),
    ("agents", None, "", "anthropic.agents"),
    (
        "messages",
        {**MSG, "tools": [{"type": "code_execution_20250825", "name": "c"}]},
        "",
        "anthropic.code_execution",
    ),
    (
        "count_tokens",
        {**MSG, "tools": [{"type": "code_execution_20250522"}]},
        "",
        "anthropic.code_execution",
    ),
    (
        "messages",
        {**MSG, "tools": [{"type": "web_search_20260209"}]},
        "",
        "anthropic.web_dynamic_filtering",
    ),
    (
        "messages",
        {**MSG, "tools": [{"type": "web_fetch_20260209"}]},
        "",
        "anthropic.web_dynamic_filtering",
    ),
    (
        "messages",
        {**MSG, "mcp_servers": [{"type": "url", "url": "https://x"}]},
        "",
        "anthropic.mcp_servers",
    ),
    (
        "messages",
        {**MSG, "container": {"skills": [{"skill_id": "pptx"}]}},
        "",
        "anthropic.container",
    ),
    ("messages", {**MSG, "container": "container_011"}, "", "anthropic.container"),
    ("messages", MSG, "files-api-2025-04-14", "anthropic.beta.files_api"),
    ("messages", MSG, "code-execution-2025-08-25", "anthropic.beta.code_execution"),
    ("messages", MSG, "mcp-client-2025-11-20", "anthropic.beta.mcp_client"),
    ("messages", MSG, "skills-2025-10-02", "anthropic.beta.skills"),
    ("models", None, "files-api-2025-04-14", "anthropic.beta.files_api"),
    (
        "messages",
        MSG,
        "prompt-caching-2024-07-31, files-api-2025-04-14",
        "anthropic.beta.files_api",
    ),
    ("messages", MSG, "some-new-beta-2027-01-01", "anthropic.beta.unlisted"),
]


@pytest.mark.parametrize(("endpoint", "body", "beta", "rule"), REFUSED)
def test_refused(endpoint: str, body: dict[str, Any] | None, beta: str, rule: str) -> None:
    d = run(endpoint, body, beta)
    assert d.refused is not None
    assert d.refused.id == rule
    assert d.decisions[-1] == f"refuse:{rule}"
    assert d.refused.message.startswith("refused by the ZDR policy: ")
    assert rule in d.refused.message
    assert d.refused.doc_url in d.refused.message


ALLOWED: list[tuple[str, dict[str, Any] | None, str]] = [
    ("messages", MSG, ""),
    ("messages", {**MSG, "stream": True, "system": "be brief"}, ""),
    ("count_tokens", MSG, ""),
    ("models", None, ""),
    ("messages", {**MSG, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, ""),
    ("messages", {**MSG, "tools": [{"name": "get_weather", "input_schema": {}}]}, ""),
    ("messages", {**MSG, "tools": [{"type": "custom", "name": "code_execution_like"}]}, ""),
    ("messages", {**MSG, "mcp_servers": []}, ""),
    ("messages", {**MSG, "container": None}, ""),
    ("messages", MSG, "prompt-caching-2024-07-31"),
    ("messages", MSG, "interleaved-thinking-2025-05-14,context-1m-2025-08-07"),
    # Feature rules look at the body only where it reaches a model.
    ("models", {"mcp_servers": [{}]}, ""),
    ("messages", {**MSG, "tools": "not-a-list"}, ""),
    ("messages", {**MSG, "tools": [None, 3, {"type": 5}]}, ""),
]


@pytest.mark.parametrize(("endpoint", "body", "beta"), ALLOWED)
def test_allowed(endpoint: str, body: dict[str, Any] | None, beta: str) -> None:
    d = run(endpoint, body, beta)
    assert d.allowed, d.refused
    assert d.decisions == ()
    assert d.body is None


def test_first_rule_in_table_order_is_reported_and_all_overrides_recorded() -> None:
    body = {**MSG, "mcp_servers": [{}], "tools": [{"type": "code_execution_20250825"}]}
    settings = PolicySettings.model_validate(
        {"teams": {"t": {"allow": ["anthropic.code_execution"]}}}
    )
    d = run("messages", body, settings=settings)
    assert d.refused is not None
    assert d.refused.id == "anthropic.mcp_servers"
    assert d.decisions == ("override:anthropic.code_execution", "refuse:anthropic.mcp_servers")


def test_team_override_allows_and_is_recorded() -> None:
    allow = {"allow": ["anthropic.code_execution", "anthropic.beta.code_execution"]}
    settings = PolicySettings.model_validate({"teams": {"sandbox": allow}})
    body = {**MSG, "tools": [{"type": "code_execution_20250825"}]}
    d = run("messages", body, "code-execution-2025-08-25", team="sandbox", settings=settings)
    assert d.allowed
    assert d.decisions == (
        "override:anthropic.code_execution",
        "override:anthropic.beta.code_execution",
    )
    # The same request from another team is still refused.
    other = run("messages", body, "code-execution-2025-08-25", team="prod", settings=settings)
    assert other.refused is not None
    assert other.refused.id == "anthropic.code_execution"
    assert run("messages", body, team=None, settings=settings).refused is not None


def test_unlisted_beta_allowed_by_config() -> None:
    allow = PolicySettings.model_validate({"betas": {"allow": ["my-beta-*"]}})
    assert run("messages", MSG, "my-beta-2026-01-01", settings=allow).allowed
    assert not run("messages", MSG, "prompt-caching-2024-07-31", settings=allow).allowed
    lax = PolicySettings.model_validate({"betas": {"unlisted": "allow"}})
    assert run("messages", MSG, "anything-goes", settings=lax).allowed
    # ...but a retention beta stays refused by its own rule whatever `unlisted` says.
    d = run("messages", MSG, "files-api-2025-04-14", settings=lax)
    assert d.refused is not None
    assert d.refused.id == "anthropic.beta.files_api"


def test_non_eligible_route_without_a_rule_is_refused() -> None:
    d = run("something_new", None, eligible=False)
    assert d.refused is not None
    assert d.refused.id == "endpoint.not_eligible"
    # A named rule takes precedence over the generic one.
    d = run("batches", None, eligible=False)
    assert d.refused is not None
    assert d.refused.id == "anthropic.batches"
    # A team exempt from a named endpoint rule is not caught by the generic one.
    s = PolicySettings.model_validate({"teams": {"t": {"allow": ["anthropic.files"]}}})
    assert run("files", None, eligible=False, settings=s).allowed


def test_openai_store_rewritten_without_mutating_input() -> None:
    body = {"model": "gpt-5", "input": "hi"}
    d = run("responses", body, provider="openai")
    assert d.allowed
    assert d.body == {"model": "gpt-5", "input": "hi", "store": False}
    assert "store" not in body
    assert d.decisions == ("rewrite:openai.store",)
    # Explicit store=false needs no rewrite.
    assert run("responses", {**body, "store": False}, provider="openai").body is None
    # Chat completions default to store=false: only an explicit true is rewritten.
    assert run("chat_completions", {"model": "gpt-5"}, provider="openai").body is None
    d = run("chat_completions", {"model": "gpt-5", "store": True}, provider="openai")
    assert d.body is not None
    assert d.body["store"] is False


@pytest.mark.parametrize(
    ("endpoint", "body", "rule"),
    [
        ("files", None, "openai.endpoint"),
        ("vector_stores", None, "openai.endpoint"),
        ("responses", {"previous_response_id": "resp_1"}, "openai.previous_response_id"),
        ("responses", {"conversation": "conv_1"}, "openai.conversation"),
        ("responses", {"background": True}, "openai.background"),
        ("responses", {"tools": [{"type": "code_interpreter"}]}, "openai.hosted_tools"),
        ("chat_completions", {"prompt_cache_retention": "24h"}, "openai.extended_prompt_cache"),
    ],
)
def test_openai_refusals(endpoint: str, body: dict[str, Any] | None, rule: str) -> None:
    d = run(endpoint, body, provider="openai")
    assert d.refused is not None
    assert d.refused.id == rule


def test_provider_rules_do_not_cross() -> None:
    assert run("responses", {"previous_response_id": "x"}, provider="anthropic").allowed
    assert run("messages", {**MSG, "mcp_servers": [{}]}, provider="openai").allowed


def test_table_is_well_formed() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    for rule in BY_ID.values():
        # Bounded metric label values: short, fixed charset.
        assert rule.id.replace(".", "").replace("_", "").isalnum()
        assert len(rule.id) <= 48
        assert rule.doc_url.startswith("https://")
        assert rule.doc_title
        assert (rule.action == "rewrite") == (rule.rewrite is not None)


def test_prefilter_never_drops_a_rule_that_matches() -> None:
    """`decide` only evaluates rules whose matcher `applies_to` the endpoint kind; a rule
    that matches a request must therefore apply to that request's endpoint."""
    kinds = {r[0] for r in REFUSED} | {r[0] for r in ALLOWED} | {"responses", "files"}
    bodies = [r[1] for r in REFUSED] + [r[1] for r in ALLOWED]
    betas = [parse_betas(r[2]) for r in REFUSED] + [()]
    checked = 0
    for kind in kinds:
        for body in bodies:
            for beta in betas:
                request = Request(kind, body, beta)
                for rule in RULES:
                    if rule.match.matches(request):
                        assert rule.match.applies_to(kind), (rule.id, kind)
                        checked += 1
    assert checked > len(RULES)  # the table really exercised the rules


def test_message_never_quotes_the_request() -> None:
    canary = "CANARY-policy-7f3a"
    body = {**MSG, "mcp_servers": [{"url": canary}], "container": canary}
    d = run("messages", body, f"{canary}-beta, files-api-{canary}")
    assert d.refused is not None
    assert canary not in d.refused.message
    assert canary not in repr(d)


def test_parse_betas() -> None:
    assert parse_betas(None) == ()
    assert parse_betas(" a , ,b,") == ("a", "b")
