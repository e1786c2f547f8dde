"""The official anthropic SDK through the real gateway (TLS) to the stand-in upstream."""

from __future__ import annotations

import anthropic
import pytest
from anthropic.types import MessageParam

from tests.conftest import Gateway, Upstream

PROMPT: list[MessageParam] = [{"role": "user", "content": "Hi"}]


async def test_messages_create(
    anthropic_client: anthropic.AsyncAnthropic, upstream: Upstream, gateway: Gateway
) -> None:
    msg = await anthropic_client.messages.create(
        model="claude-sonnet-5-5", max_tokens=32, messages=PROMPT
    )
    assert msg.content[0].type == "text"
    assert msg.content[0].text == upstream.stub.behaviour.reply
    assert msg.usage.output_tokens > 0
    labels = {"provider": "anthropic", "model": "claude-sonnet-5-5", "team": "anonymous"}
    assert gateway.sample("zdr_gateway_tokens_total", kind="output", **labels) == float(
        msg.usage.output_tokens
    )


async def test_messages_stream_text_and_final_usage(
    anthropic_client: anthropic.AsyncAnthropic, upstream: Upstream, gateway: Gateway
) -> None:
    async with anthropic_client.messages.stream(
        model="claude-sonnet-5-5", max_tokens=64, messages=PROMPT
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == upstream.stub.behaviour.reply
    assert final.usage.output_tokens == len(upstream.stub.behaviour.reply.split(" "))
    labels = {"provider": "anthropic", "model": "claude-sonnet-5-5", "team": "anonymous"}
    assert gateway.sample("zdr_gateway_tokens_total", kind="input", **labels) == float(
        final.usage.input_tokens
    )
    assert gateway.sample("zdr_gateway_tokens_total", kind="output", **labels) == float(
        final.usage.output_tokens
    )


async def test_count_tokens_and_models(anthropic_client: anthropic.AsyncAnthropic) -> None:
    count = await anthropic_client.messages.count_tokens(model="claude-sonnet-5-5", messages=PROMPT)
    assert count.input_tokens > 0
    models = [m.id async for m in anthropic_client.models.list()]
    assert "claude-sonnet-5-5" in models
    one = await anthropic_client.models.retrieve("claude-haiku-5-5")
    assert one.id == "claude-haiku-5-5"


async def test_credentials_swapped(
    anthropic_client: anthropic.AsyncAnthropic, upstream: Upstream
) -> None:
    await anthropic_client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=PROMPT)
    seen = upstream.stub.requests[-1]
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert headers["x-api-key"] == upstream.stub.api_key
    assert "authorization" not in headers
    assert "client-key-not-for-upstream" not in repr(seen.headers)
    assert headers["anthropic-version"]  # forwarded unchanged


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(429, anthropic.RateLimitError), (529, anthropic.OverloadedError)],
)
async def test_upstream_errors_reach_sdk(
    anthropic_client: anthropic.AsyncAnthropic,
    upstream: Upstream,
    status: int,
    error_class: type[anthropic.APIStatusError],
) -> None:
    upstream.stub.behaviour.fail_status = status
    upstream.stub.behaviour.retry_after = "7"
    with pytest.raises(error_class) as info:
        await anthropic_client.messages.create(
            model="claude-sonnet-5-5", max_tokens=8, messages=PROMPT
        )
    assert info.value.status_code == status
    assert info.value.response.headers["retry-after"] == "7"
