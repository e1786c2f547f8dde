"""The policy stage in the real gateway: refusals are 400 invalid_request_error (as the
provider refuses what a retention arrangement does not allow) and never reach the upstream."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pytest

from tests.conftest import Gateway, StartGateway, Upstream
from tests.support import audit as support_audit

MODEL = "claude-sonnet-5-5"
PROMPT = [{"role": "user", "content": "hi"}]
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "client-key"}
BODY = {"model": MODEL, "max_tokens": 16, "messages": PROMPT}

Call = Callable[[anthropic.AsyncAnthropic], Awaitable[Any]]

SDK_REFUSALS: list[tuple[str, Call, str]] = [
    (
        "batches",
        lambda c: c.messages.batches.create(
            requests=[{"custom_id": "a", "params": {**BODY}}]  # type: ignore[typeddict-item]  # a raw body dict, as a client sends it
        ),
        "anthropic.batches",
    ),
    ("batch_results", lambda c: c.messages.batches.retrieve("msgbatch_01"), "anthropic.batches"),
    (
        "files_upload",
        lambda c: c.beta.files.upload(file=("a.txt", b"content", "text/plain")),
        "anthropic.files",
    ),
    ("files_list", lambda c: c.beta.files.list(), "anthropic.files"),
    ("skills", lambda c: c.beta.skills.list(), "anthropic.skills"),
    ("agents", lambda c: c.beta.agents.list(), "anthropic.agents"),
    ("sessions", lambda c: c.beta.sessions.list(), "anthropic.agents"),
    (
        "code_execution",
        lambda c: c.messages.create(
            model=MODEL,
            max_tokens=16,
            messages=PROMPT,  # type: ignore[arg-type]
            tools=[{"type": "code_execution_20250825", "name": "code_execution"}],
        ),
        "anthropic.code_execution",
    ),
    (
        "mcp_servers",
        lambda c: c.beta.messages.create(
            model=MODEL,
            max_tokens=16,
            messages=PROMPT,  # type: ignore[arg-type]
            mcp_servers=[{"type": "url", "url": "https://mcp.example", "name": "x"}],
            betas=["mcp-client-2025-11-20"],
        ),
        "anthropic.mcp_servers",
    ),
    (
        "files_beta_header",
        lambda c: c.beta.messages.create(
            model=MODEL,
            max_tokens=16,
            messages=PROMPT,  # type: ignore[arg-type]
            betas=["files-api-2025-04-14"],
        ),
        "anthropic.beta.files_api",
    ),
    (
        "count_tokens_container",
        lambda c: c.messages.count_tokens(
            model=MODEL,
            messages=PROMPT,  # type: ignore[arg-type]
            extra_body={"container": {"skills": [{"type": "anthropic", "skill_id": "pptx"}]}},
        ),
        "anthropic.container",
    ),
]


@pytest.mark.parametrize(("name", "call", "rule"), SDK_REFUSALS, ids=[r[0] for r in SDK_REFUSALS])
async def test_refused_with_400_and_never_forwarded(
    anthropic_client: anthropic.AsyncAnthropic,
    upstream: Upstream,
    gateway: Gateway,
    name: str,
    call: Call,
    rule: str,
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        await call(anthropic_client)
    err = info.value
    assert err.status_code == 400
    body = err.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("refused by the ZDR policy: ")
    assert f"rule {rule};" in body["error"]["message"]
    assert upstream.stub.requests == []
    assert gateway.sample("zdr_gateway_policy_refusals_total", rule=rule) == 1.0


async def test_allowed_features_pass(
    anthropic_client: anthropic.AsyncAnthropic, upstream: Upstream
) -> None:
    await anthropic_client.beta.messages.create(
        model=MODEL,
        max_tokens=16,
        messages=PROMPT,  # type: ignore[arg-type]
        betas=["interleaved-thinking-2025-05-14"],
        tools=[{"type": "web_search_20250305", "name": "web_search"}],
    )
    seen = upstream.stub.requests[-1]
    assert seen.headers.get("anthropic-beta") == "interleaved-thinking-2025-05-14"


async def test_team_override_passes_and_is_audited(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream, tmp_path: Path
) -> None:
    audit = tmp_path / "audit"
    config_dict["policy"] = {"teams": {"anonymous": {"allow": ["anthropic.mcp_servers"]}}}
    config_dict["audit"] = support_audit.file_sink(audit)
    gw = await start_gateway(config_dict)
    body = {**BODY, "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "x"}]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.url + "/v1/messages", json=body, headers=HEADERS, ssl=gw.client_ssl()) as resp,
    ):
        assert resp.status == 200
    assert len(upstream.stub.requests) == 1
    (event,) = support_audit.events(audit)
    assert event["decisions"] == ["override:anthropic.mcp_servers"]
    assert event["status"] == 200


async def test_openai_store_is_rewritten_before_it_leaves(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    openai_up = {**config_dict["upstreams"][0], "name": "openai", "provider": "openai"}
    config_dict["upstreams"].append({**openai_up, "prefix": "/openai"})
    gw = await start_gateway(config_dict)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + "/openai/v1/responses",
            json={"model": "gpt-5", "input": "hi"},
            headers={"authorization": "Bearer client-key"},
            ssl=gw.client_ssl(),
        ) as resp,
    ):
        await resp.read()
    sent = json.loads(upstream.stub.requests[-1].body)
    assert sent == {"model": "gpt-5", "input": "hi", "store": False}


async def test_unlisted_beta_and_tool_pass_counted_and_marked_never_named(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream, tmp_path: Path
) -> None:
    audit = tmp_path / "audit"
    config_dict["audit"] = support_audit.file_sink(audit)
    gw = await start_gateway(config_dict)
    canary_beta = "canarybeta-7f3a-2027-01-01"
    canary_tool = "canarytool_7f3a_20270101"
    body = {**BODY, "tools": [{"type": canary_tool, "name": "t"}]}
    headers = {**HEADERS, "anthropic-beta": f"claude-code-20250219,{canary_beta}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.url + "/v1/messages", json=body, headers=headers, ssl=gw.client_ssl()) as r,
    ):
        assert r.status == 200
    # Forwarded verbatim (Anthropic's guidance to gateways in front of Claude Code).
    assert upstream.stub.requests[-1].headers["anthropic-beta"] == headers["anthropic-beta"]
    assert gw.sample("zdr_gateway_policy_unlisted_total", kind="beta") == 1.0
    assert gw.sample("zdr_gateway_policy_unlisted_total", kind="tool") == 1.0
    (event,) = support_audit.events(audit)
    assert event["decisions"] == ["unlisted:beta", "unlisted:tool"]
    from prometheus_client import generate_latest

    text = support_audit.text(audit) + generate_latest(gw.registry).decode()
    assert "7f3a" not in text


async def test_strict_mode_refuses_unlisted_beta(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    config_dict["policy"] = {"betas": {"unlisted": "refuse"}}
    gw = await start_gateway(config_dict)
    headers = {**HEADERS, "anthropic-beta": "brand-new-2027-01-01"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.url + "/v1/messages", json=BODY, headers=headers, ssl=gw.client_ssl()) as r,
    ):
        assert r.status == 400
        err = (await r.json())["error"]
    assert err["type"] == "invalid_request_error"
    assert "rule anthropic.beta.unlisted;" in err["message"]
    assert "policy.betas.allow" in err["message"]  # what to do instead
    assert upstream.stub.requests == []


async def test_openai_chat_store_false_is_explicit_upstream(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    openai_up = {**config_dict["upstreams"][0], "name": "openai", "provider": "openai"}
    config_dict["upstreams"].append({**openai_up, "prefix": "/openai"})
    gw = await start_gateway(config_dict)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + "/openai/v1/chat/completions",
            json={"model": "gpt-5", "messages": PROMPT},
            headers={"authorization": "Bearer client-key"},
            ssl=gw.client_ssl(),
        ) as resp,
    ):
        await resp.read()
    sent = json.loads(upstream.stub.requests[-1].body)
    assert sent == {"model": "gpt-5", "messages": PROMPT, "store": False}
