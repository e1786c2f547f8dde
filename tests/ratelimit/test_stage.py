"""The rate-limit stage through a real TLS gateway (in process) and the stand-in upstream."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
import anthropic
import pytest

from gateway.ratelimit.rules import rules_for
from gateway.state import RATELIMIT
from tests.conftest import Gateway, StartGateway, Upstream
from tests.support.eventually import eventually

MSG: dict[str, Any] = {
    "model": "claude-sonnet-5-5",
    "messages": [{"role": "user", "content": "hi"}],
}


def with_limits(cfg: dict[str, Any], **section: Any) -> dict[str, Any]:
    return cfg | {"ratelimit": section}


async def post(
    http: aiohttp.ClientSession, gw: Gateway, max_tokens: int = 16, stream: bool = False
) -> aiohttp.ClientResponse:
    body = MSG | {"max_tokens": max_tokens, "stream": stream}
    return await http.post(
        gw.url + "/v1/messages",
        json=body,
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
        ssl=gw.client_ssl(),
    )


async def in_flight(gw: Gateway) -> int:
    rl = gw.running.app[RATELIMIT]
    from gateway.auth.principal import ANONYMOUS

    rule = next(r for r in rules_for(rl.settings, ANONYMOUS, True) if r.concurrent)
    return await rl.limiter.in_flight(rule, time.time())


async def test_refusal_is_a_429_the_sdk_understands(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    gw = await start_gateway(with_limits(config_dict, defaults={"rpm": 2}))
    async with aiohttp.ClientSession() as http:
        ok = [await post(http, gw) for _ in range(2)]
        refused = await post(http, gw)
        for r in ok:
            assert r.status == 200
            assert r.headers["anthropic-ratelimit-requests-limit"] == "2"
        assert ok[1].headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert refused.status == 429
        doc = await refused.json()
        assert doc["type"] == "error"
        assert doc["error"]["type"] == "rate_limit_error"
        assert doc["error"]["message"] == (
            "Rate limit of 2 requests per minute for this API key exceeded."
        )
        assert refused.headers["retry-after"] == "30"
        assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
        reset = refused.headers["anthropic-ratelimit-requests-reset"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", reset)
        for r in [*ok, refused]:
            r.release()
    assert len(upstream.stub.requests) == 2  # the refused request never left
    assert (
        gw.sample("zdr_gateway_ratelimit_decisions_total", limit="key_rpm", outcome="refused") == 1
    )
    assert (
        gw.sample(
            "zdr_gateway_requests_total",
            provider="anthropic",
            route="messages",
            status_class="4xx",
            code="429",
            team="anonymous",
        )
        == 1
    )


async def test_provider_rate_limit_headers_never_reach_the_client(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    upstream.stub.behaviour.headers = {
        "anthropic-ratelimit-tokens-remaining": "987654000",
        "anthropic-ratelimit-requests-limit": "50000",
    }
    gw = await start_gateway(with_limits(config_dict, defaults={"rpm": 7}))
    async with aiohttp.ClientSession() as http:
        for stream in (False, True):
            r = await post(http, gw, stream=stream)
            assert r.status == 200
            assert "anthropic-ratelimit-tokens-remaining" not in r.headers
            assert r.headers.getall("anthropic-ratelimit-requests-limit") == ["7"]
            await r.read()


async def test_streaming_token_reservations_refuse_then_refund(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    upstream.stub.behaviour.pause_after = 1  # streams stay open until resumed
    gw = await start_gateway(with_limits(config_dict, defaults={"output_tpm": 1000}))
    async with aiohttp.ClientSession() as http:
        first = await asyncio.gather(*(post(http, gw, 400, stream=True) for _ in range(3)))
        statuses = sorted(r.status for r in first)
        assert statuses == [200, 200, 429]  # 3 x 400 reserved > 1000: refused at admission
        refused = next(r for r in first if r.status == 429)
        assert "output tokens per minute" in (await refused.json())["error"]["message"]
        upstream.stub.behaviour.resume.set()
        for r in first:
            await r.read()
        # Each stream used 8 output tokens (the stub's word count): 392 refunded each.
        again = await post(http, gw, 400, stream=True)
        assert again.status == 200
        assert int(again.headers["anthropic-ratelimit-output-tokens-remaining"]) >= 1000 - 16 - 400
        await again.read()


async def test_max_tokens_above_the_limit_says_do_not_retry(
    start_gateway: StartGateway, config_dict: dict[str, Any]
) -> None:
    gw = await start_gateway(with_limits(config_dict, defaults={"output_tpm": 1000}))
    async with aiohttp.ClientSession() as http:
        r = await post(http, gw, 4096)
        assert r.status == 429
        assert r.headers["x-should-retry"] == "false"
        assert "retry-after" not in r.headers
        r.release()


async def test_sdk_gets_rate_limit_error_and_its_retry_succeeds(
    start_gateway: StartGateway, config_dict: dict[str, Any]
) -> None:
    gw = await start_gateway(with_limits(config_dict, defaults={"rpm": 60}, burst=1))
    http = anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl())
    client = anthropic.AsyncAnthropic(base_url=gw.url, api_key="k", max_retries=0, http_client=http)
    try:
        rl = gw.running.app[RATELIMIT]
        # Drain the bucket without 60 round trips: reserve directly on the same limiter.
        from gateway.auth.principal import ANONYMOUS
        from gateway.ratelimit.rules import Cost

        rules = rules_for(rl.settings, ANONYMOUS, True)
        while (await rl.limiter.acquire(rules, Cost(), time.time())).allowed:
            pass
        with pytest.raises(anthropic.RateLimitError) as exc:
            await client.messages.create(max_tokens=16, **MSG)
        assert exc.value.response.headers["retry-after"] == "1"
        started = time.monotonic()
        retrying = client.with_options(max_retries=2)
        msg = await retrying.messages.create(max_tokens=16, **MSG)
        assert msg.content[0].type == "text"
        assert time.monotonic() - started >= 0.5  # it waited for the bucket, as told
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("how", "backend"),
    [
        ("disconnect", "memory"),
        ("disconnect", "redis"),
        ("upstream_reset", "memory"),
        ("upstream_error", "memory"),
        ("timeout", "memory"),
        ("timeout", "redis"),
    ],
)
async def test_concurrency_slots_are_released_on_every_path(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    upstream: Upstream,
    how: str,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    b = upstream.stub.behaviour
    if how == "disconnect":
        b.pause_after = 1
    elif how == "upstream_reset":
        b.reset_after = 1
    elif how == "upstream_error":
        b.fail_status = 529
    else:
        config_dict["upstreams"][0]["timeouts"]["first_byte"] = 0.2
        b.header_delay = 2
    n = 100 if how == "disconnect" else 10
    section: dict[str, Any] = {"defaults": {"concurrency": 200}}
    if backend == "redis":
        url = request.getfixturevalue("redis_server").url
        prefix = f"slots{how}"
        section |= {"backend": "redis", "redis_url": url, "failure_mode": "fail_closed"}
        section |= {"redis_key_prefix": prefix}
    gw = await start_gateway(with_limits(config_dict, **section))
    sessions = [aiohttp.ClientSession() for _ in range(n)]
    try:
        responses = await asyncio.gather(*(post(s, gw, stream=True) for s in sessions))
        if how == "disconnect":
            assert all(r.status == 200 for r in responses)
            for r in responses:
                await r.content.readuntil(b"\n\n")  # mid-stream
            assert await in_flight(gw) == n
        else:
            for r in responses:
                await r.read()
        for r in responses:
            r.close()  # the clients go away (a no-op for responses already read)
        for s in sessions:
            await s.close()

        async def drained() -> bool:
            return await in_flight(gw) == 0 and gw.sample("zdr_gateway_requests_in_flight") == 0

        await eventually(drained, interval=0.05, what="nothing in flight")
        assert await in_flight(gw) == 0
        assert gw.sample("zdr_gateway_requests_in_flight") == 0
        if how == "disconnect":
            assert upstream.stub.disconnects == n  # and every upstream call was cancelled
    finally:
        b.resume.set()
        for s in sessions:
            await s.close()


async def test_count_tokens_counts_requests_not_tokens(
    start_gateway: StartGateway, config_dict: dict[str, Any]
) -> None:
    gw = await start_gateway(
        with_limits(config_dict, defaults={"rpm": 5, "input_tpm": 10, "output_tpm": 10})
    )
    async with aiohttp.ClientSession() as http:
        r = await http.post(
            gw.url + "/v1/messages/count_tokens",
            data=json.dumps(MSG | {"system": "x" * 3000}),
            headers={"x-api-key": "k", "content-type": "application/json"},
            ssl=gw.client_ssl(),
        )
        assert r.status == 200
        assert r.headers["anthropic-ratelimit-requests-remaining"] == "4"
        assert "anthropic-ratelimit-input-tokens-limit" not in r.headers
        r.release()


async def test_disabled_limits_pass_everything(
    start_gateway: StartGateway, config_dict: dict[str, Any]
) -> None:
    gw = await start_gateway(with_limits(config_dict, enabled=False, defaults={"rpm": 1}))
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            r = await post(http, gw)
            assert r.status == 200
            assert "anthropic-ratelimit-requests-limit" not in r.headers
            r.release()


async def test_openai_routes_get_openai_shaped_limits(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    openai_up = config_dict["upstreams"][0] | {
        "name": "openai",
        "provider": "openai",
        "prefix": "/openai",
    }
    cfg = config_dict | {"upstreams": [*config_dict["upstreams"], openai_up]}
    gw = await start_gateway(with_limits(cfg, defaults={"rpm": 1, "output_tpm": 600}))
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as http:
        url = gw.url + "/openai/v1/chat/completions"
        first = await http.post(
            url, json=body | {"max_completion_tokens": 100}, ssl=gw.client_ssl()
        )
        # Admitted (the stand-in upstream itself answers 401 to an OpenAI credential).
        assert first.headers["x-ratelimit-limit-requests"] == "1"
        assert first.headers["x-ratelimit-remaining-requests"] == "0"
        assert first.headers["x-ratelimit-reset-requests"] == "1m0s"
        assert first.headers["x-ratelimit-remaining-tokens"] == "500"  # 100 reserved of 600
        assert "anthropic-ratelimit-requests-limit" not in first.headers
        first.release()
        second = await http.post(url, json=body, ssl=gw.client_ssl())
        assert second.status == 429
        doc = await second.json()
        assert doc["error"]["type"] == "rate_limit_exceeded"
        assert "requests per minute" in doc["error"]["message"]
        assert second.headers["retry-after"] == "60"
