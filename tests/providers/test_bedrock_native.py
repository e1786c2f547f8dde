"""Bedrock's native Messages API (mantle / runtime) through the gateway, official SDK in front.

The stand-in re-computes every SigV4 signature with botocore from the test's secret, for
the service each endpoint signs under, and refuses a bad one.
"""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam

from tests.conftest import Gateway, StartGateway
from tests.providers.conftest import ACCESS_KEY, EU_SONNET, BedrockUpstream, sdk, without_env_keys
from tests.support.bedrock_standin import BedrockStandIn

PROMPT: list[MessageParam] = [{"role": "user", "content": "Hi"}]


async def start(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: dict[str, Any]
) -> Gateway:
    config_dict["upstreams"] = [upstream]
    return await start_gateway(config_dict)


@pytest.mark.parametrize(
    ("mode", "service"), [("mantle", "bedrock-mantle"), ("runtime", "bedrock")]
)
async def test_sdk_create_stream_count_signed_per_service(
    mode: str,
    service: str,
    bedrock: tuple[BedrockStandIn, str],
    bedrock_upstream: BedrockUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
) -> None:
    standin, _ = bedrock
    gw = await start(start_gateway, config_dict, bedrock_upstream(mode=mode))
    client = sdk(gw)
    msg = await client.messages.create(model="claude-sonnet-4-5", max_tokens=32, messages=PROMPT)
    assert msg.content[0].type == "text"
    assert msg.content[0].text == standin.behaviour.reply
    async with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=32, messages=PROMPT
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == standin.behaviour.reply
    count = await client.messages.count_tokens(model="claude-sonnet-4-5", messages=PROMPT)
    assert count.input_tokens > 0
    await client.close()
    assert [s.path for s in standin.seen] == [
        "/anthropic/v1/messages",
        "/anthropic/v1/messages",
        "/anthropic/v1/messages/count_tokens",
    ]
    for seen in standin.seen:
        assert seen.service == service
        assert seen.access_key == ACCESS_KEY  # the re-computed signature matched
        assert "x-api-key" not in {k.lower() for k in seen.headers}  # client key never passes
        assert b'"model":"' + EU_SONNET.encode() + b'"' in seen.body  # id mapped by config
    labels = {"provider": "anthropic", "model": "claude-sonnet-4-5", "team": "anonymous"}
    out = gw.sample("zdr_gateway_tokens_total", kind="output", **labels)
    assert out == msg.usage.output_tokens + final.usage.output_tokens
    assert gw.sample("zdr_gateway_tokens_total", kind="input", **labels) == (
        msg.usage.input_tokens + final.usage.input_tokens
    )


async def test_bedrock_api_key_as_bearer(
    bedrock: tuple[BedrockStandIn, str],
    bedrock_upstream: BedrockUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    aws_env: pytest.MonkeyPatch,
) -> None:
    standin, _ = bedrock
    without_env_keys(aws_env)  # no SigV4 credentials at all: the key is enough
    gw = await start(start_gateway, config_dict, bedrock_upstream(api_key=standin.api_key))
    client = sdk(gw)
    msg = await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
    await client.close()
    assert msg.content[0].type == "text"
    assert standin.seen[-1].headers["Authorization"] == f"Bearer {standin.api_key}"


async def test_wrong_secret_is_refused_by_the_stand_in(
    bedrock: tuple[BedrockStandIn, str],
    bedrock_upstream: BedrockUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    aws_env: pytest.MonkeyPatch,
) -> None:
    standin, _ = bedrock
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    gw = await start(start_gateway, config_dict, bedrock_upstream())
    client = sdk(gw)
    with pytest.raises(anthropic.InternalServerError) as info:
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
    await client.close()
    assert standin.seen[-1].access_key is None  # recomputed signature did not match
    assert info.value.status_code == 500
    assert "refused the gateway's credentials" in str(info.value)


async def test_unmapped_model_is_refused_before_upstream(
    bedrock: tuple[BedrockStandIn, str],
    bedrock_upstream: BedrockUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
) -> None:
    standin, _ = bedrock
    gw = await start(start_gateway, config_dict, bedrock_upstream())
    client = sdk(gw)
    for model in ("claude-opus-5", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"):
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.create(model=model, max_tokens=8, messages=PROMPT)
    await client.close()
    assert standin.seen == []
