"""Load shedding: while saturated, new requests get 529 + retry-after and are counted;
requests already streaming complete; readiness can reflect sustained shedding."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import anthropic
import pytest

from gateway.observe.metrics import Metrics
from gateway.serve.lag import LagSampler
from gateway.serve.load import Shedder
from tests.conftest import Gateway, StartGateway, Upstream

MODEL = "claude-sonnet-4-5"
HI: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]


def sdk(gw: Gateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=gw.url,
        api_key="client-key",
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
    )


async def test_streams_in_progress_complete_while_new_requests_are_shed(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    config_dict["server"]["shed"] = {"max_in_flight": 2, "retry_after_seconds": 4}
    gw = await start_gateway(config_dict)
    upstream.stub.behaviour.pause_after = 2  # both streams wait mid-way for the test
    client = sdk(gw)
    streams = [
        aiter(await client.messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True))
        for _ in range(2)
    ]
    firsts = [await anext(s) for s in streams]
    assert all(e.type == "message_start" for e in firsts)
    # Saturated: every new request is shed, with the SDKs' retry signal.
    for _ in range(5):
        with pytest.raises(anthropic.APIStatusError) as err:
            await client.messages.create(model=MODEL, max_tokens=64, messages=HI)
        assert err.value.status_code == 529
        assert err.value.response.headers["retry-after"] == "4"
        assert err.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert gw.sample("zdr_gateway_shed_requests_total", reason="in_flight") == 5
    # The streams that were admitted run to their end.
    upstream.stub.behaviour.resume.set()
    for s in streams:
        events = [e.type async for e in s]
        assert events[-1] == "message_stop"
    # Room again: new requests are served.
    reply = await client.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert reply.content[0].type == "text"
    await client.close()


async def test_the_sdk_retries_a_529_and_gets_through(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    config_dict["server"]["shed"] = {"max_in_flight": 1, "retry_after_seconds": 1}
    gw = await start_gateway(config_dict)
    upstream.stub.behaviour.pause_after = 1
    client = sdk(gw)
    stream = aiter(
        await client.messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True)
    )
    await anext(stream)

    async def release_soon() -> None:
        await asyncio.sleep(0.3)
        upstream.stub.behaviour.resume.set()
        async for _ in stream:
            pass

    task = asyncio.create_task(release_soon())
    retrying = client.with_options(max_retries=3)
    reply = await retrying.messages.create(
        model=MODEL, max_tokens=64, messages=HI
    )  # 529, retry-after 1 s, then 200
    assert reply.content[0].type == "text"
    await task
    assert gw.sample("zdr_gateway_shed_requests_total", reason="in_flight") >= 1
    await client.close()


async def test_readiness_turns_false_under_sustained_shedding_and_back(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    config_dict["server"]["shed"] = {
        "max_in_flight": 1,
        "unready_after_seconds": 0.3,
        "lag_interval_seconds": 0.05,
    }
    gw = await start_gateway(config_dict)
    upstream.stub.behaviour.pause_after = 1
    client = sdk(gw)
    stream = aiter(
        await client.messages.create(model=MODEL, max_tokens=64, messages=HI, stream=True)
    )
    await anext(stream)
    async with aiohttp.ClientSession() as http:

        async def readyz() -> tuple[int, dict[str, Any]]:
            async with http.get(gw.admin_url + "/readyz") as r:
                return r.status, await r.json()

        assert (await readyz())[0] == 200  # saturated, but not for long yet
        await asyncio.sleep(0.6)
        assert await readyz() == (503, {"status": "not ready", "reason": "shedding"})
        upstream.stub.behaviour.resume.set()
        async for _ in stream:
            pass
        await asyncio.sleep(0.2)
        assert (await readyz())[0] == 200
    await client.close()


async def test_event_loop_lag_sheds_until_the_loop_catches_up() -> None:
    shedder = Shedder(max_lag=0.1)
    sampler = LagSampler(shedder, 0.02, Metrics())
    sampler.start()
    try:
        await asyncio.sleep(0.05)
        assert shedder.admit() is None
        time.sleep(0.3)  # one stall: the sampler's timer fires 0.3 s late...
        await asyncio.sleep(0.001)
        assert shedder.admit() is None  # ...which alone is not saturation
        time.sleep(0.3)  # late again on the next sample: the loop is saturated
        await asyncio.sleep(0.001)
        assert shedder.lag > 0.2
        assert shedder.admit() == "loop_lag"
        await asyncio.sleep(0.1)
        assert shedder.admit() is None
    finally:
        sampler.stop()


def test_saturation_is_timed_from_its_start_and_reset_when_it_ends() -> None:
    now = [100.0]
    shedder = Shedder(max_in_flight=2, clock=lambda: now[0])
    shedder.tick()
    assert shedder.saturated_for() == 0
    shedder.in_flight = 2
    shedder.tick()
    now[0] = 103.0
    shedder.tick()
    assert shedder.saturated_for() == 3.0
    shedder.in_flight = 1
    shedder.tick()
    assert shedder.saturated_for() == 0
    assert shedder.admit() is None
