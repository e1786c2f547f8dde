"""Bedrock InvokeModel (`mode: invoke`) behind the Anthropic API: body translated, the event
stream (frames cut at arbitrary byte positions) re-emitted as Anthropic SSE, errors mapped."""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types import MessageParam

from tests.conftest import Gateway, StartGateway
from tests.providers.conftest import EU_SONNET, BedrockUpstream, sdk
from tests.support.bedrock_standin import BedrockStandIn

PROMPT: list[MessageParam] = [{"role": "user", "content": "Hi"}]
BETA = "context-1m-2025-08-07"


@pytest.fixture
async def gw(
    bedrock_upstream: BedrockUpstream, start_gateway: StartGateway, config_dict: dict[str, Any]
) -> Gateway:
    config_dict["upstreams"] = [bedrock_upstream(mode="invoke")]
    return await start_gateway(config_dict)


@pytest.mark.parametrize("split", [1, 7, 300, 0])
async def test_sdk_stream_create_count_through_invoke(
    split: int, gw: Gateway, bedrock: tuple[BedrockStandIn, str]
) -> None:
    standin, _ = bedrock
    standin.behaviour.split = split
    client = sdk(gw)
    async with client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=32,
        messages=PROMPT,
        extra_headers={"anthropic-beta": BETA},
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    msg = await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
    count = await client.messages.count_tokens(model="claude-sonnet-4-5", messages=PROMPT)
    await client.close()
    assert text == standin.behaviour.reply
    assert msg.content[0].type == "text"
    assert msg.content[0].text == standin.behaviour.reply
    assert count.input_tokens > 0
    streamed, created, counted = standin.seen
    assert streamed.path == f"/model/{EU_SONNET}/invoke-with-response-stream"
    assert created.path == f"/model/{EU_SONNET}/invoke"
    assert counted.path == f"/model/{EU_SONNET}/count-tokens"
    body = json.loads(streamed.body)
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in body
    assert "stream" not in body
    assert body["anthropic_beta"] == [BETA]  # moved from the header into the body
    assert "anthropic-beta" not in {k.lower() for k in streamed.headers}
    assert streamed.headers["X-Amzn-Bedrock-Accept"] == "application/json"
    inner = json.loads(base64.b64decode(json.loads(counted.body)["input"]["invokeModel"]["body"]))
    assert inner["anthropic_version"] == "bedrock-2023-05-31"
    labels = {"provider": "anthropic", "model": "claude-sonnet-4-5", "team": "anonymous"}
    assert gw.sample("zdr_gateway_tokens_total", kind="output", **labels) == (
        final.usage.output_tokens + msg.usage.output_tokens
    )
    assert gw.sample("zdr_gateway_tokens_total", kind="input", **labels) == (
        final.usage.input_tokens + msg.usage.input_tokens
    )


async def raw_stream(gw: Gateway) -> tuple[int, str, str]:
    async with httpx2.AsyncClient(verify=gw.client_ssl()) as http:
        r = await http.post(
            gw.url + "/v1/messages",
            json={"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": PROMPT,
                  "stream": True},
            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        )  # fmt: skip
    return r.status_code, r.headers.get("content-type", ""), r.text


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("throttlingException", "rate_limit_error"),
        ("serviceUnavailableException", "overloaded_error"),
        ("modelTimeoutException", "api_error"),
        ("internalServerException", "api_error"),
        ("validationException", "invalid_request_error"),
    ],
)
async def test_exception_frame_mid_stream_is_an_sse_error(
    kind: str, expected: str, gw: Gateway, bedrock: tuple[BedrockStandIn, str]
) -> None:
    standin, _ = bedrock
    standin.behaviour.exception_after = (2, kind)
    status, ctype, text = await raw_stream(gw)
    assert status == 200
    assert ctype.startswith("text/event-stream")
    events = [block.split("\n") for block in text.strip().split("\n\n")]
    assert [e[0] for e in events[:5]] == [
        "event: message_start",
        "event: content_block_start",
        "event: content_block_delta",
        "event: content_block_delta",
        "event: error",
    ]
    error = json.loads(events[4][1].removeprefix("data: "))
    assert error["error"]["type"] == expected
    assert len(events) == 5  # the exception frame is the stream's last word
    errors = gw.sample("zdr_gateway_stream_errors_total", provider="anthropic", type=expected)
    assert errors == 1.0


async def test_in_band_error_chunk_reaches_the_sdk(
    gw: Gateway, bedrock: tuple[BedrockStandIn, str]
) -> None:
    standin, _ = bedrock
    standin.behaviour.inband_error_after = 1
    client = sdk(gw)

    async def consume() -> None:
        async with client.messages.stream(
            model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT
        ) as stream:
            async for _ in stream.text_stream:
                pass

    with pytest.raises(anthropic.APIStatusError) as info:
        await consume()
    await client.close()
    assert "overloaded_error" in str(info.value.body)


@pytest.mark.parametrize(
    ("status", "kind", "exc", "client_status"),
    [
        (429, "ThrottlingException", anthropic.RateLimitError, 429),
        (429, "ModelNotReadyException", anthropic.RateLimitError, 429),
        (503, "ServiceUnavailableException", anthropic.InternalServerError, 529),
        (408, "ModelTimeoutException", anthropic.InternalServerError, 500),
        (500, "InternalServerException", anthropic.InternalServerError, 500),
        (400, "ValidationException", anthropic.BadRequestError, 400),
        (404, "ResourceNotFoundException", anthropic.NotFoundError, 404),
    ],
)
async def test_http_errors_map_to_anthropic_shapes(
    status: int,
    kind: str,
    exc: type[anthropic.APIStatusError],
    client_status: int,
    gw: Gateway,
    bedrock: tuple[BedrockStandIn, str],
) -> None:
    standin, _ = bedrock
    standin.behaviour.fail = (status, kind)
    client = sdk(gw)
    for stream in (False, True):
        with pytest.raises(exc) as info:
            await client.messages.create(
                model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT, stream=stream
            )
        assert info.value.status_code == client_status
        body = info.value.body
        assert isinstance(body, dict)
        assert body["type"] == "error"
        assert body["error"]["message"] == "Stand-in failure."
    await client.close()


async def test_count_tokens_where_the_model_cannot_is_a_clear_400(
    gw: Gateway, bedrock: tuple[BedrockStandIn, str]
) -> None:
    standin, _ = bedrock
    standin.behaviour.count_tokens_supported = False
    client = sdk(gw)
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.count_tokens(model="claude-sonnet-4-5", messages=PROMPT)
    await client.close()
    assert "doesn't support counting tokens" in str(info.value)
