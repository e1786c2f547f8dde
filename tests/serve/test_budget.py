"""The process-wide memory budget for request bodies: 529 + retry-after for what would
not fit (before reading, when Content-Length says so; at once, when a chunked body
grows past it), 413 for what could never fit, and the budget given back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.conftest import Gateway, StartGateway, Upstream
from tests.serve.conftest import closed_within

KiB, MiB = 1024, 1024 * 1024


def body_of(size: int) -> bytes:
    """A messages request of about `size` bytes (one long text block)."""
    text = "x" * (size - 120)
    doc = {"model": "claude-sonnet-4-5", "max_tokens": 8,
           "messages": [{"role": "user", "content": text}]}  # fmt: skip
    return json.dumps(doc).encode()


async def budget_gateway(
    start_gateway: StartGateway, plain_config: dict[str, Any], upstream: Upstream
) -> Gateway:
    plain_config["server"]["max_body_bytes"] = MiB
    plain_config["server"]["limits"] = {"body_memory_bytes": 3 * MiB + 256 * KiB}
    plain_config["server"]["shed"] = {"retry_after_seconds": 3}
    upstream.stub.behaviour.header_delay = 1.0  # admitted bodies stay held for a second
    return await start_gateway(plain_config)


async def post(http: aiohttp.ClientSession, gw: Gateway, body: bytes) -> aiohttp.ClientResponse:
    headers = {"content-type": "application/json"}
    async with http.post(gw.url + "/v1/messages", data=body, headers=headers) as resp:
        await resp.read()
        return resp


async def test_a_body_that_would_not_fit_is_shed_before_it_is_read(
    start_gateway: StartGateway, plain_config: dict[str, Any], upstream: Upstream
) -> None:
    gw = await budget_gateway(start_gateway, plain_config, upstream)
    port = gw.running.port
    async with aiohttp.ClientSession() as http:
        holder = asyncio.create_task(post(http, gw, body_of(900 * KiB)))  # 3 x 0.88 MiB held
        await asyncio.sleep(0.4)
        assert gw.sample("zdr_gateway_buffered_body_bytes") >= 2.5 * MiB
        # Only the head is sent: the answer comes without a byte of the body.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 600000\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert head.startswith(b"HTTP/1.1 529"), head
        assert b"retry-after: 3" in head.lower()
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        err = json.loads(await reader.readexactly(length))
        assert err["error"]["type"] == "overloaded_error"
        writer.close()
        assert (await holder).status == 200  # the admitted request completes
        assert gw.sample("zdr_gateway_shed_requests_total", reason="body_budget") == 1
        # The budget was given back: the same body now fits.
        assert gw.sample("zdr_gateway_buffered_body_bytes") == 0
        upstream.stub.behaviour.header_delay = 0
        assert (await post(http, gw, body_of(600 * KiB))).status == 200


async def test_a_chunked_body_is_shed_the_moment_it_outgrows_the_budget(
    start_gateway: StartGateway, plain_config: dict[str, Any], upstream: Upstream
) -> None:
    gw = await budget_gateway(start_gateway, plain_config, upstream)
    async with aiohttp.ClientSession() as http:
        holder = asyncio.create_task(post(http, gw, body_of(900 * KiB)))
        await asyncio.sleep(0.4)
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.running.port)
        writer.write(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * (64 * KiB)
        sent = 0
        answer = asyncio.create_task(reader.readuntil(b"\r\n\r\n"))
        while not answer.done() and sent < MiB:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            await asyncio.sleep(0.01)
        head = await asyncio.wait_for(answer, 2)
        assert head.startswith(b"HTTP/1.1 529"), head
        # Shed when it outgrew the ~0.6 MiB left, before the 1 MiB cap.
        assert sent < 900 * KiB
        writer.close()
        assert (await holder).status == 200
    assert gw.sample("zdr_gateway_shed_requests_total", reason="body_budget") == 1
    assert gw.sample("zdr_gateway_buffered_body_bytes") == 0


async def test_a_body_whose_parsed_form_could_never_fit_is_a_413(
    start_gateway: StartGateway, plain_config: dict[str, Any], upstream: Upstream
) -> None:
    gw = await budget_gateway(start_gateway, plain_config, upstream)
    # 60 KiB of `{},`: 20,000 dicts of 64 bytes and more once parsed, past 3.25 MiB.
    hostile = b'{"model":"m","max_tokens":1,"messages":[' + b",".join([b"{}"] * 20_000) + b"]}"
    async with aiohttp.ClientSession() as http:
        resp = await post(http, gw, hostile)
    assert resp.status == 413
    assert gw.sample("zdr_gateway_buffered_body_bytes") == 0
    assert upstream.stub.requests == []


async def test_json_nested_past_the_limit_is_a_400_naming_it(
    start_gateway: StartGateway, plain_config: dict[str, Any]
) -> None:
    gw = await start_gateway(plain_config)
    async with aiohttp.ClientSession() as http:
        for levels in (1_000, 50_000):
            for where in ("content", "metadata"):
                deep = "[" * levels + "]" * levels
                body = '{"model":"claude-sonnet-4-5","max_tokens":1,' + (
                    f'"messages":[{{"role":"user","content":{deep}}}]}}'
                    if where == "content"
                    else f'"messages":[],"metadata":{{"x":{deep}}}}}'
                )
                headers = {"content-type": "application/json"}
                async with http.post(gw.url + "/v1/messages", data=body, headers=headers) as r:
                    assert r.status == 400
                    err = await r.json()
                assert err["error"]["type"] == "invalid_request_error"
                assert "limit of 128 levels" in err["error"]["message"]


async def test_an_unread_body_does_not_hold_the_connection_past_its_deadline(
    start_gateway: StartGateway, plain_config: dict[str, Any]
) -> None:
    """After a 408, the unread rest is drained for a second (LINGER_SECONDS), not
    aiohttp's ten: a trickling client is not a way around the body deadline."""
    plain_config["server"]["timeouts"] = {"body": 0.5, "idle": 30}
    gw = await start_gateway(plain_config)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.running.port)
    writer.write(
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 1000\r\n\r\n{"
    )
    assert await closed_within(reader, 4)
    writer.close()
