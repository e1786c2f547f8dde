"""Forwarding over real sockets: streaming without buffering, headers, failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Gateway, StartGateway, Upstream
from tests.support.eventually import eventually

BODY = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 32,
    "messages": [{"role": "user", "content": "hi"}],
}
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "client-key"}


async def post(
    gw: Gateway, body: Any = None, *, data: Any = None, path: str = "/v1/messages", **kw: Any
) -> tuple[int, dict[str, str], bytes]:
    """POST `body` as JSON, or raw `data` (then set content-type in `headers`)."""
    headers = {**HEADERS, **kw.pop("headers", {})}
    payload = {"data": data} if data is not None else {"json": BODY if body is None else body}
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.url + path, headers=headers, ssl=gw.client_ssl(), **payload, **kw) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


async def assert_still_serving(gw: Gateway) -> None:
    status, _, body = await post(gw)
    assert status == 200, body


async def test_first_event_reaches_client_before_upstream_continues(
    gateway: Gateway, upstream: Upstream
) -> None:
    b = upstream.stub.behaviour
    b.pause_after = 1  # one text delta, then the upstream waits for us
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gateway.url + "/v1/messages",
            json={**BODY, "stream": True},
            headers=HEADERS,
            ssl=gateway.client_ssl(),
        ) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        seen = b""
        async with asyncio.timeout(5):
            while b"content_block_delta" not in seen:
                seen += await resp.content.readany()
        assert not b.resume.is_set()  # the upstream is still paused: nothing was held back
        b.resume.set()
        rest = await resp.read()
    assert b"message_stop" in rest


async def test_client_disconnect_closes_upstream(gateway: Gateway, upstream: Upstream) -> None:
    upstream.stub.behaviour.pause_after = 1
    http = aiohttp.ClientSession()
    resp = await http.post(
        gateway.url + "/v1/messages",
        json={**BODY, "stream": True},
        headers=HEADERS,
        ssl=gateway.client_ssl(),
    )
    async with asyncio.timeout(5):
        while b"content_block_delta" not in await resp.content.readany():
            pass
    resp.close()
    await http.close()
    await eventually(lambda: upstream.stub.disconnects > 0, what="the upstream disconnect")
    await eventually(lambda: gateway.sample("zdr_gateway_requests_in_flight") == 0)
    assert (
        gateway.sample(
            "zdr_gateway_requests_total",
            provider="anthropic",
            route="messages",
            status_class="4xx",
            code="499",
            team="anonymous",
        )
        == 1
    )
    upstream.stub.behaviour.pause_after = None
    await assert_still_serving(gateway)


async def test_upstream_reset_mid_stream(gateway: Gateway, upstream: Upstream) -> None:
    upstream.stub.behaviour.reset_after = 2
    status, _, body = await post(gateway, {**BODY, "stream": True})
    assert status == 200
    assert b"event: error" in body
    data = json.loads(body.rsplit(b"data: ", 1)[1])
    assert data["error"]["type"] == "api_error"
    assert (
        gateway.sample("zdr_gateway_upstream_errors_total", upstream="anthropic", kind="reset") == 1
    )
    assert (
        gateway.sample(
            "zdr_gateway_stream_errors_total", provider="anthropic", type="upstream_reset"
        )
        == 1
    )
    upstream.stub.behaviour.reset_after = None
    await assert_still_serving(gateway)


async def test_upstream_error_event_is_counted(gateway: Gateway, upstream: Upstream) -> None:
    upstream.stub.behaviour.stream_error = True
    status, _, body = await post(gateway, {**BODY, "stream": True})
    assert status == 200
    assert b"overloaded_error" in body  # passed through as the provider sent it
    assert (
        gateway.sample(
            "zdr_gateway_stream_errors_total", provider="anthropic", type="overloaded_error"
        )
        == 1
    )


def _anthropic_error(body: bytes, kind: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(body)
    assert doc["type"] == "error"
    assert doc["error"]["type"] == kind
    assert doc["error"]["message"]
    return doc


@pytest.mark.parametrize(
    ("kwargs", "status", "kind"),
    [
        (
            {"data": b'{"model": "x", ', "headers": {"content-type": "application/json"}},
            400,
            "invalid_request_error",
        ),
        (
            {"data": b"[1, 2]", "headers": {"content-type": "application/json"}},
            400,
            "invalid_request_error",
        ),
        (
            {"data": b'{"model": 5}', "headers": {"content-type": "application/json"}},
            400,
            "invalid_request_error",
        ),
        ({"data": b"{}", "headers": {"content-type": "text/plain"}}, 415, "invalid_request_error"),
        ({"path": "/v1/unknown"}, 404, "not_found_error"),
        ({"path": "/v1/models/../../etc"}, 404, "not_found_error"),
    ],
)
async def test_bad_input_is_a_clear_error(
    gateway: Gateway, upstream: Upstream, kwargs: dict[str, Any], status: int, kind: str
) -> None:
    got, headers, raw = await post(gateway, **kwargs)
    assert got == status
    doc = _anthropic_error(raw, kind)
    assert headers["request-id"] == doc["request_id"]
    assert headers["request-id"].startswith("gw_")
    assert upstream.stub.requests == []
    await assert_still_serving(gateway)


async def test_wrong_method(gateway: Gateway) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(gateway.url + "/v1/messages", ssl=gateway.client_ssl()) as resp,
    ):
        assert resp.status == 405
        _anthropic_error(await resp.read(), "invalid_request_error")


async def test_oversize_body(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    config_dict["server"]["max_body_bytes"] = 2048
    gw = await start_gateway(config_dict)
    big = {**BODY, "messages": [{"role": "user", "content": "x" * 5000}]}
    status, _, raw = await post(gw, big)
    assert status == 413
    _anthropic_error(raw, "request_too_large")

    # Chunked (no Content-Length): the cap holds while reading, too.
    async def gen() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    status, _, raw = await post(gw, data=gen(), headers={"content-type": "application/json"})
    assert status == 413
    assert upstream.stub.requests == []
    await assert_still_serving(gw)


async def test_headers_by_allow_list(gateway: Gateway, upstream: Upstream) -> None:
    status, headers, _ = await post(
        gateway,
        headers={
            "authorization": "Bearer client-bearer",
            "cookie": "session=client-cookie",
            "x-forwarded-for": "10.9.9.9",
            "anthropic-beta": "dropped-by-connection",
            "connection": "keep-alive, anthropic-beta",
        },
        params={"beta": "true", "key": "client-query-secret"},
    )
    assert status == 200
    seen = upstream.stub.requests[-1]
    sent = {k.lower(): v for k, v in seen.headers.items()}
    assert sent["x-api-key"] == upstream.stub.api_key
    for leaked in ("client-bearer", "client-cookie", "10.9.9.9", "client-key", "client-query"):
        assert leaked not in repr(seen.headers) + seen.query
    assert "anthropic-beta" not in sent
    assert seen.query == "beta=true"
    # Back: provider identifiers are not passed to clients; the upstream request id is.
    lower = {k.lower(): v for k, v in headers.items()}
    assert "anthropic-organization-id" not in lower
    assert lower["request-id"] == "req_stub0001"
    assert lower["x-gateway-request-id"].startswith("gw_")


async def test_upstream_certificate_not_trusted(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    config_dict["upstreams"][0]["ca_file"] = None  # system CAs do not know the test CA
    gw = await start_gateway(config_dict)
    status, _, raw = await post(gw)
    assert status == 502
    doc = _anthropic_error(raw, "api_error")
    assert "certificate" in doc["error"]["message"]
    assert gw.sample("zdr_gateway_upstream_errors_total", upstream="anthropic", kind="tls") == 1
    assert upstream.stub.requests == []


async def test_upstream_first_byte_timeout(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    config_dict["upstreams"][0]["timeouts"]["first_byte"] = 0.3
    gw = await start_gateway(config_dict)
    upstream.stub.behaviour.header_delay = 2
    status, _, raw = await post(gw)
    assert status == 504
    _anthropic_error(raw, "timeout_error")
    upstream.stub.behaviour.header_delay = 0
    await assert_still_serving(gw)


async def test_upstream_unreachable(
    start_gateway: StartGateway, config_dict: dict[str, Any]
) -> None:
    config_dict["upstreams"][0]["url"] = "https://127.0.0.1:9"  # discard port: nothing listens
    gw = await start_gateway(config_dict)
    status, _, raw = await post(gw)
    assert status == 502
    _anthropic_error(raw, "api_error")
    assert gw.sample("zdr_gateway_upstream_errors_total", upstream="anthropic", kind="connect") == 1


async def test_stream_idle_timeout(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    config_dict["upstreams"][0]["timeouts"]["idle"] = 0.3
    gw = await start_gateway(config_dict)
    upstream.stub.behaviour.pause_after = 1  # then silent for longer than `idle`
    status, _, body = await post(gw, {**BODY, "stream": True})
    assert status == 200
    assert body.rstrip().endswith(b"}")
    assert b"event: error" in body
    assert gw.sample("zdr_gateway_upstream_errors_total", upstream="anthropic", kind="timeout") == 1
    # The silent upstream was closed.
    await eventually(lambda: upstream.stub.disconnects > 0, what="the upstream disconnect")


@pytest.mark.parametrize(
    "path",
    [
        # Decoded by the server into a space: upstream, the rest would read as the version.
        "/v1/files/a%20HTTP/1.1",
        "/v1/files/caf%C3%A9",
    ],
)
async def test_a_path_http_cannot_carry_is_refused(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream, path: str
) -> None:
    config_dict["policy"] = {"teams": {"anonymous": {"allow": ["anthropic.files"]}}}
    gw = await start_gateway(config_dict)
    async with (
        aiohttp.ClientSession() as http,
        http.get(gw.url + path, headers=HEADERS, ssl=gw.client_ssl()) as resp,
    ):
        assert resp.status == 400
        doc = _anthropic_error(await resp.read(), "invalid_request_error")
    assert "HTTP/1.1" not in doc["error"]["message"]
    assert upstream.stub.requests == []
    # The refusal is the gateway's own: nothing was counted against the upstream.
    assert (
        gw.sample("zdr_gateway_upstream_errors_total", upstream="anthropic", kind="protocol") == 0
    )


async def test_json_body_that_stalls_midway_hits_the_idle_deadline(
    aiohttp_server: Any, start_gateway: StartGateway, config_dict: dict[str, Any]
) -> None:
    """Only a body already in whole skips the idle timer: one still arriving keeps it."""
    from aiohttp import web

    release = asyncio.Event()

    async def messages(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "application/json"})
        resp.content_length = 100
        await resp.prepare(request)
        await resp.write(b'{"type":"message",')  # then silent for longer than `idle`
        await release.wait()
        return resp

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    stalled = await aiohttp_server(app)
    config_dict["upstreams"][0]["url"] = f"http://127.0.0.1:{stalled.port}"
    config_dict["upstreams"][0].pop("ca_file")
    config_dict["upstreams"][0]["timeouts"]["idle"] = 0.3
    gw = await start_gateway(config_dict)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with asyncio.timeout(5):
            await post(gw)
    assert gw.sample("zdr_gateway_upstream_errors_total", upstream="anthropic", kind="timeout") == 1
    release.set()


def test_whole_json_bodies_keep_headers_for_the_first_write() -> None:
    """forward's one-write JSON relay rests on aiohttp's `_send_headers_immediately`
    (what web.Response uses): an aiohttp that drops it must fail here, not go slow."""
    from aiohttp import web

    from gateway.stages.forward import _WholeBodyResponse

    assert web.StreamResponse._send_headers_immediately is True
    assert web.Response._send_headers_immediately is False
    assert _WholeBodyResponse._send_headers_immediately is False


async def test_admin_responses_do_not_advertise_versions(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http, http.get(gateway.admin_url + "/healthz") as r:
        assert r.headers["Server"] == "zdr-gateway"
