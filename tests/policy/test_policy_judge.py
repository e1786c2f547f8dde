"""The ZDR policy table, rule by rule: what is refused, what passes, what is rewritten."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.policy.judge import Verdict, judge, parse_betas
from gateway.policy.rules import BY_ID, RULES, Request
from gateway.policy.settings import PolicySettings

DEFAULT = PolicySettings()
STRICT = PolicySettings.model_validate(
    {"betas": {"unlisted": "refuse"}, "tools": {"unlisted": "refuse"}}
)
CLAUDE_CODE_BETAS = (
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
    "thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24"
)
MSG = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": []}


def run(
    endpoint: str = "messages",
    body: dict[str, Any] | None = None,
    beta: str = "",
    *,
    provider: str = "anthropic",
    team: str | None = "t",
    settings: PolicySettings = DEFAULT,
    eligible: bool = True,
) -> Verdict:
    headers = {"anthropic-beta": beta} if beta else {}
    return judge(endpoint, provider, headers, body, team, settings, zdr_eligible=eligible)


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
    (
        "messages",
        {
            **MSG,
            "tools": [
                {"name": "t", "input_schema": {}, "allowed_callers": ["code_execution_20250825"]}
            ],
        },
        "",
        "anthropic.programmatic_tool_calling",
    ),
    (
        "messages",
        {**MSG, "tools": [{"type": "mcp_toolset", "mcp_server_name": "x"}]},
        "",
        "anthropic.mcp_servers",
    ),
    # A new version of a refused tool family stays refused.
    (
        "messages",
        {**MSG, "tools": [{"type": "code_execution_20270101"}]},
        "",
        "anthropic.code_execution",
    ),
    # A re-dated refused beta stays refused.
    ("messages", MSG, "files-api-2027-01-01", "anthropic.beta.files_api"),
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
    ("messages", {**MSG, "tools": [None, 3]}, ""),
    ("messages", {**MSG, "tools": [{"name": "t", "allowed_callers": ["direct"]}]}, ""),
    # What Claude Code 2.1.328 sends on a plain call.
    ("messages", MSG, CLAUDE_CODE_BETAS),
    (
        "messages",
        {**MSG, "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}},
        "",
    ),
    ("messages", {**MSG, "tools": [{"type": "bash_20250124", "name": "bash"}]}, ""),
    ("messages", {**MSG, "tools": [{"type": "memory_20250818", "name": "memory"}]}, ""),
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
        "override:anthropic.beta.code_execution",
        "override:anthropic.code_execution",
    )
    # The same request from another team is still refused.
    other = run("messages", body, "code-execution-2025-08-25", team="prod", settings=settings)
    assert other.refused is not None
    assert other.refused.id == "anthropic.beta.code_execution"  # betas are judged first
    assert run("messages", body, team=None, settings=settings).refused is not None


def test_unlisted_beta_and_tool_pass_by_default_marked_but_not_named() -> None:
    canary = "zz-canary-beta-2027-01-01"
    body = {**MSG, "tools": [{"type": "zz_canary_tool_20270101", "name": "x"}]}
    d = run("messages", body, f"claude-code-20250219,{canary}")
    assert d.allowed
    assert d.unlisted == ("beta", "tool")
    assert d.decisions == ("unlisted:beta", "unlisted:tool")
    assert "canary" not in repr(d)
    # Several unlisted values of one kind are one mark.
    assert run("messages", MSG, "x-1,y-2").unlisted == ("beta",)


def test_strict_mode_refuses_unlisted_beta_and_tool() -> None:
    d = run("messages", MSG, "some-new-beta-2027-01-01", settings=STRICT)
    assert d.refused is not None
    assert d.refused.id == "anthropic.beta.unlisted"
    assert d.decisions == ("unlisted:beta", "refuse:anthropic.beta.unlisted")
    body = {**MSG, "tools": [{"type": "new_server_tool_20270101"}]}
    d = run("messages", body, settings=STRICT)
    assert d.refused is not None
    assert d.refused.id == "anthropic.tool.unlisted"
    # A non-string type is unlisted too.
    assert run("messages", {**MSG, "tools": [{"type": 5}]}, settings=STRICT).refused is not None
    # Catalogued values pass in strict mode: Claude Code still works.
    assert run("messages", MSG, CLAUDE_CODE_BETAS, settings=STRICT).allowed
    # A web_search version the catalogue does not know is unlisted, not assumed eligible.
    d = run("messages", {**MSG, "tools": [{"type": "web_search_20270101"}]}, settings=STRICT)
    assert d.refused is not None
    assert d.refused.id == "anthropic.tool.unlisted"


def test_operator_allow_lists_extend_the_catalogue() -> None:
    s = PolicySettings.model_validate(
        {
            "betas": {"unlisted": "refuse", "allow": ["my-beta-*"]},
            "tools": {"unlisted": "refuse", "allow": ["my_tool_*"]},
        }
    )
    body = {**MSG, "tools": [{"type": "my_tool_20260101"}]}
    d = run("messages", body, "my-beta-2026-01-01", settings=s)
    assert d.allowed
    assert d.unlisted == ()
    assert not run("messages", MSG, "other-2026-01-01", settings=s).allowed
    # ...but a retention beta stays refused by its own rule whatever `unlisted` says.
    d = run("messages", MSG, "files-api-2025-04-14")
    assert d.refused is not None
    assert d.refused.id == "anthropic.beta.files_api"


STRUCTURED = [
    ({**MSG, "output_format": {"type": "json_schema", "schema": {}}}, ""),
    ({**MSG, "output_config": {"format": {"type": "json_schema", "schema": {}}}}, ""),
    ({**MSG, "tools": [{"name": "t", "input_schema": {}, "strict": True}]}, ""),
    (MSG, "structured-outputs-2025-11-13"),
]


@pytest.mark.parametrize(("body", "beta"), STRUCTURED)
def test_structured_outputs_are_qualified_allowed_by_default(
    body: dict[str, Any], beta: str
) -> None:
    d = run("messages", body, beta)
    assert d.allowed
    assert d.decisions == ("qualified:anthropic.structured_outputs",)
    off = PolicySettings.model_validate({"qualified": {"anthropic.structured_outputs": "refuse"}})
    d = run("messages", body, beta, settings=off)
    assert d.refused is not None
    assert d.refused.id == "anthropic.structured_outputs"
    assert "policy.qualified.anthropic.structured_outputs" in d.refused.message


def test_dynamic_filtering_is_qualified_refused_by_default() -> None:
    body = {**MSG, "tools": [{"type": "web_fetch_20260209", "name": "web_fetch"}]}
    assert run("messages", body).refused is not None
    on = PolicySettings.model_validate({"qualified": {"anthropic.web_dynamic_filtering": "allow"}})
    d = run("messages", body, settings=on)
    assert d.allowed
    assert d.decisions == ("qualified:anthropic.web_dynamic_filtering",)
    # output_config without a format (e.g. effort) is not structured output.
    assert run("messages", {**MSG, "output_config": {"effort": "high"}}).decisions == ()


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
    # Chat completions: store=false is sent explicitly even when the client left it out.
    d = run("chat_completions", {"model": "gpt-5"}, provider="openai")
    assert d.body == {"model": "gpt-5", "store": False}
    assert d.decisions == ("rewrite:openai.chat_store",)
    d = run("chat_completions", {"model": "gpt-5", "store": True}, provider="openai")
    assert d.body is not None
    assert d.body["store"] is False
    assert (
        run("chat_completions", {"model": "gpt-5", "store": False}, provider="openai").body is None
    )


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
    """`judge` only evaluates rules whose matcher `applies_to` the endpoint kind; a rule
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
