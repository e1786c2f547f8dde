"""An OpenAI-compatible upstream behind a route prefix, with the official openai SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from gateway.demo.stub_openai import StubOpenAI
from tests.conftest import Gateway, StartGateway


@pytest.fixture
async def gw(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    openai_stub: tuple[StubOpenAI, str],
    cert_files: dict[str, str],
) -> Gateway:
    stub, url = openai_stub
    config_dict["upstreams"].append(
        {
            "name": "openai",
            "provider": "openai",
            "url": url,
            "api_key": stub.api_key,
            "ca_file": cert_files["ca_file"],
            "prefix": "/openai",
        }
    )
    return await start_gateway(config_dict)


@pytest.fixture
async def client(gw: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    c = openai.AsyncOpenAI(
        base_url=gw.url + "/openai/v1",
        api_key="client-key-not-for-upstream",
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
    )
    yield c
    await c.close()


MESSAGES: Any = [{"role": "user", "content": "hi"}]


async def test_chat_completion(
    client: openai.AsyncOpenAI, gw: Gateway, openai_stub: tuple[StubOpenAI, str]
) -> None:
    stub, _ = openai_stub
    done = await client.chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert done.choices[0].message.content == stub.reply
    assert done.usage is not None
    labels = {"provider": "openai", "model": "gpt-5", "team": "anonymous"}
    assert gw.sample("zdr_gateway_tokens_total", kind="output", **labels) == float(
        done.usage.completion_tokens
    )
    sent = {k.lower(): v for k, v in stub.requests[-1].headers.items()}
    assert sent["authorization"] == f"Bearer {stub.api_key}"
    assert "client-key-not-for-upstream" not in repr(stub.requests[-1].headers)


async def test_chat_stream_with_usage(
    client: openai.AsyncOpenAI, gw: Gateway, openai_stub: tuple[StubOpenAI, str]
) -> None:
    stub, _ = openai_stub
    stream = await client.chat.completions.create(
        model="gpt-5", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = ""
    usage = None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == stub.reply
    assert usage is not None
    labels = {"provider": "openai", "model": "gpt-5", "team": "anonymous"}
    assert gw.sample("zdr_gateway_tokens_total", kind="input", **labels) == float(
        usage.prompt_tokens
    )


async def test_openai_shaped_errors(client: openai.AsyncOpenAI, gw: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.get("/nope", cast_to=object)
    assert info.value.status_code == 404
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + "/openai/v1/chat/completions",
            data=b"{not json",
            headers={"content-type": "application/json"},
            ssl=gw.client_ssl(),
        ) as resp,
    ):
        assert resp.status == 400
        doc = await resp.json()
    assert set(doc) == {"error"}
    assert doc["error"]["type"] == "invalid_request_error"


async def test_anthropic_routes_unaffected(gw: Gateway) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(gw.url + "/v1/models", ssl=gw.client_ssl(), headers={"x-api-key": "k"}) as resp,
    ):
        assert resp.status == 200
        assert "claude-sonnet-5-5" in await resp.text()
