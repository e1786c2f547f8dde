"""Cloud-native clients through the gateway: `AnthropicBedrock` / `AnthropicVertex` with the
gateway's key, at the gateway's /bedrock and /vertex prefixes. The gateway re-signs, keeps the
Bedrock event stream byte for byte, reads usage from its frames, and answers the probes."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import MessageParam

from gateway.auth import tokens
from gateway.auth.keyset import load_private_key, write_key_pair
from tests.conftest import Gateway, StartGateway
from tests.providers.conftest import (
    ACCESS_KEY,
    EU_SONNET,
    VERTEX_SONNET,
    BedrockUpstream,
    VertexUpstream,
)
from tests.support.bedrock_standin import BedrockStandIn
from tests.support.vertex_standin import VertexStandIn

PROMPT: list[MessageParam] = [{"role": "user", "content": "Hi"}]
LABELS = {"provider": "anthropic", "model": "claude-sonnet-4-5", "team": "anonymous"}


@pytest.fixture
async def gw(
    bedrock_upstream: BedrockUpstream,
    vertex_upstream: VertexUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
) -> Gateway:
    config_dict["upstreams"] += [
        bedrock_upstream(mode="invoke", prefix="/bedrock"),
        vertex_upstream(prefix="/vertex"),
    ]
    return await start_gateway(config_dict)


def bedrock_client(gw: Gateway) -> anthropic.AsyncAnthropicBedrock:
    return anthropic.AsyncAnthropicBedrock(
        api_key="gateway-key",  # the gateway's key, as Bearer; never AWS's
        aws_region="eu-central-1",
        base_url=gw.url + "/bedrock",
        max_retries=0,
        http_client=httpx2.AsyncClient(verify=gw.client_ssl()),
    )


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", EU_SONNET])
async def test_anthropic_bedrock_sdk_create_and_stream(
    model: str, gw: Gateway, bedrock: tuple[BedrockStandIn, str]
) -> None:
    standin, _ = bedrock
    client = bedrock_client(gw)
    msg = await client.messages.create(model=model, max_tokens=8, messages=PROMPT)
    async with client.messages.stream(
        model=model, max_tokens=8, messages=PROMPT, extra_headers={"anthropic-beta": "effort-1"}
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    await client.close()
    assert msg.content[0].type == "text"
    assert msg.content[0].text == standin.behaviour.reply
    assert text == standin.behaviour.reply
    created, streamed = standin.seen
    assert created.path == f"/model/{EU_SONNET}/invoke"
    assert streamed.path == f"/model/{EU_SONNET}/invoke-with-response-stream"
    assert streamed.access_key == ACCESS_KEY  # re-signed by the gateway
    body = json.loads(streamed.body)
    assert body["anthropic_version"] == "bedrock-2023-05-31"  # not the SDK's own date
    assert body["anthropic_beta"] == ["effort-1"]
    assert gw.sample("zdr_gateway_tokens_total", kind="output", **LABELS) == (
        msg.usage.output_tokens + final.usage.output_tokens
    )
    assert gw.sample("zdr_gateway_tokens_total", kind="input", **LABELS) == (
        msg.usage.input_tokens + final.usage.input_tokens
    )


async def raw(gw: Gateway, method: str, path: str, body: Any = None) -> httpx2.Response:
    async with httpx2.AsyncClient(verify=gw.client_ssl()) as http:
        return await http.request(
            method, gw.url + path, json=body, headers={"authorization": "Bearer gateway-key"}
        )


async def test_event_stream_passes_byte_for_byte(
    gw: Gateway, bedrock: tuple[BedrockStandIn, str]
) -> None:
    standin, _ = bedrock
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8, "messages": PROMPT}
    r = await raw(gw, "POST", f"/bedrock/model/{EU_SONNET}/invoke-with-response-stream", body)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert r.content == standin.last_stream
    assert gw.sample("zdr_gateway_tokens_total", kind="output", **LABELS) == len(
        standin.behaviour.reply.split(" ")
    )


async def test_native_count_tokens(gw: Gateway, bedrock: tuple[BedrockStandIn, str]) -> None:
    inner = {"anthropic_version": "2026-10-21", "max_tokens": 8, "messages": PROMPT}
    wrapped = {"input": {"invokeModel": {"body": base64.b64encode(json.dumps(inner).encode())
                                                 .decode()}}}  # fmt: skip
    r = await raw(gw, "POST", f"/bedrock/model/{EU_SONNET}/count-tokens", wrapped)
    assert r.status_code == 200
    assert r.json()["inputTokens"] > 0
    bad = await raw(gw, "POST", f"/bedrock/model/{EU_SONNET}/count-tokens", {"input": {}})
    assert bad.status_code == 400


async def test_policy_judges_betas_in_the_body(
    gw: Gateway, bedrock: tuple[BedrockStandIn, str]
) -> None:
    standin, _ = bedrock
    body = {"max_tokens": 8, "messages": PROMPT, "anthropic_beta": ["files-api-2025-04-14"]}
    r = await raw(gw, "POST", f"/bedrock/model/{EU_SONNET}/invoke", body)
    # A policy refusal is a 400 invalid_request_error (issue 11), naming the rule.
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "files" in r.json()["error"]["message"].lower()  # the rule, not a shape error
    bad = await raw(gw, "POST", f"/bedrock/model/{EU_SONNET}/invoke", {**body, "anthropic_beta": 1})
    assert bad.status_code == 400
    assert standin.seen == []


async def test_unlisted_cloud_model_is_not_served(
    gw: Gateway, bedrock: tuple[BedrockStandIn, str]
) -> None:
    standin, _ = bedrock
    body = {"max_tokens": 8, "messages": PROMPT}
    model = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    r = await raw(gw, "POST", f"/bedrock/model/{model}/invoke", body)
    assert r.status_code == 404
    assert standin.seen == []


async def test_probes_answered_locally(gw: Gateway, bedrock: tuple[BedrockStandIn, str]) -> None:
    standin, _ = bedrock
    head = await raw(gw, "HEAD", "/bedrock/")
    assert head.status_code == 200
    listing = await raw(gw, "GET", "/bedrock/inference-profiles?type=SYSTEM_DEFINED")
    assert listing.status_code == 200
    ids = [p["inferenceProfileId"] for p in listing.json()["inferenceProfileSummaries"]]
    assert ids == [EU_SONNET]
    one = await raw(gw, "GET", f"/bedrock/inference-profiles/{EU_SONNET}")
    assert one.json()["models"][0]["modelArn"].endswith(
        "foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"
    )
    missing = await raw(gw, "GET", "/bedrock/inference-profiles/us.anthropic.x-v1:0")
    assert missing.status_code == 404
    assert standin.seen == []  # nothing forwarded


async def test_anthropic_vertex_sdk(gw: Gateway, vertex: tuple[VertexStandIn, Path]) -> None:
    standin, _ = vertex
    client = anthropic.AsyncAnthropicVertex(
        access_token="gateway-key",
        region="us-east5",  # the client's; the gateway's config decides
        project_id="client-project",
        base_url=gw.url + "/vertex/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(verify=gw.client_ssl()),
    )
    msg = await client.messages.create(model=VERTEX_SONNET, max_tokens=8, messages=PROMPT)
    async with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
    count = await client.messages.count_tokens(model=VERTEX_SONNET, messages=PROMPT)
    await client.close()
    assert msg.content[0].type == "text"
    assert text == standin.reply
    assert count.input_tokens > 0
    models = "/v1/projects/standin-project/locations/europe-west4/publishers/anthropic/models"
    assert [s.path for s in standin.seen] == [
        f"{models}/{VERTEX_SONNET}:rawPredict",
        f"{models}/{VERTEX_SONNET}:streamRawPredict",
        f"{models}/count-tokens:rawPredict",
    ]
    assert all(s.headers["Authorization"].startswith("Bearer ya29.") for s in standin.seen)
    assert json.loads(standin.seen[0].body)["anthropic_version"] == "vertex-2023-10-16"


async def test_pseudonymised_values_come_back_in_the_event_stream_and_the_json(
    bedrock_upstream: BedrockUpstream,
    bedrock: tuple[BedrockStandIn, str],
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
) -> None:
    """PII on for a cloud-native client: the stand-in sees placeholders only and answers
    with them split across frames; the gateway rebuilds those frames with the originals
    (valid CRCs: the SDK's decoder checks them)."""
    standin, _ = bedrock
    standin.behaviour.echo_placeholders = True
    email = "zq.bedrock.canary.9c1e@example.org"
    config_dict["upstreams"] += [bedrock_upstream(mode="invoke", prefix="/bedrock")]
    config_dict["pii"] = {"default": {"email": "pseudonymise"}}
    gw = await start_gateway(config_dict)
    client = bedrock_client(gw)
    prompt: list[MessageParam] = [{"role": "user", "content": f"Write to {email} today"}]
    msg = await client.messages.create(model=EU_SONNET, max_tokens=8, messages=prompt)
    async with client.messages.stream(model=EU_SONNET, max_tokens=8, messages=prompt) as stream:
        text = "".join([t async for t in stream.text_stream])
    await client.close()
    assert msg.content[0].type == "text"
    assert msg.content[0].text == f"Reply for {email}."
    assert text == f"Reply for {email}."
    assert len(standin.seen) == 2
    assert all(email.encode() not in seen.body for seen in standin.seen)
    assert all(b"[EMAIL_1]" in seen.body for seen in standin.seen)


@pytest.mark.parametrize("prefix", ["/bedrock", "/vertex"])
async def test_model_list_answered_from_the_model_map(
    prefix: str,
    bedrock_upstream: BedrockUpstream,
    vertex_upstream: VertexUpstream,
    bedrock: tuple[BedrockStandIn, str],
    vertex: tuple[VertexStandIn, Path],
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    tmp_path: Path,
) -> None:
    """The clouds have no Anthropic model list: the gateway answers `models.list()` and
    `models.retrieve()` (Claude Code's gateway model discovery too) from the upstream's
    `models` map, cut to the key's model scopes like a relayed list."""
    private, public = write_key_pair(tmp_path / "keys", "k1")
    now = int(time.time())
    claims: dict[str, Any] = {"key_id": "app-1", "team": "research", "issued_at": now - 60,
                              "not_before": now - 60, "expires_at": now + 3600,
                              "endpoints": ("messages", "models"), "max_tokens": None}  # fmt: skip

    def key(models: tuple[str, ...] | None) -> str:
        issued = tokens.KeyClaims(**claims, models=models)
        return tokens.issue(issued, load_private_key(private), "k1")

    all_models, opus_only = key(None), key(("claude-opus-*",))
    config_dict["upstreams"] = [
        bedrock_upstream(mode="invoke", prefix="/bedrock"),
        vertex_upstream(prefix="/vertex"),
    ]
    config_dict["auth"] = {"signing_keys": [{"kid": "k1", "public_key_file": str(public)}]}
    gw = await start_gateway(config_dict)
    standin, _ = bedrock

    def sdk(key: str) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            base_url=gw.url + prefix, api_key=key, max_retries=0,
            http_client=anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
        )  # fmt: skip

    async with sdk(all_models) as client, sdk(opus_only) as scoped:
        page = await client.models.list(limit=1000)
        assert [m.id for m in page.data] == ["claude-sonnet-4-5"]
        assert page.first_id == page.last_id == "claude-sonnet-4-5"
        assert (await client.models.retrieve("claude-sonnet-4-5")).type == "model"
        with pytest.raises(anthropic.NotFoundError):
            await client.models.retrieve("claude-unlisted-1")
        assert [m.id async for m in scoped.models.list()] == []
    assert standin.seen == []  # nothing went to either cloud
    assert vertex[0].seen == []
