"""The served process: admin endpoints, TLS listener, SIGTERM draining."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aiohttp
import pytest

from tests.conftest import Gateway, SpawnGateway, Upstream
from tests.support.eventually import eventually

BODY = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 32,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "k"}


async def readyz_is(http: aiohttp.ClientSession, admin_url: str, status: int) -> bool:
    async with http.get(admin_url + "/readyz") as r:
        return r.status == status


async def test_admin_endpoints(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(gateway.admin_url + "/healthz") as r:
            assert r.status == 200
        async with http.get(gateway.admin_url + "/readyz") as r:
            assert r.status == 200
        async with http.get(gateway.admin_url + "/metrics") as r:
            text = await r.text()
            assert r.status == 200
    assert "zdr_gateway_build_info{" in text
    assert f'zdr_gateway_config_info{{hash="{gateway.config.digest()}"}} 1.0' in text
    assert "zdr_gateway_ready 1.0" in text


async def test_plain_http_refused_on_tls_listener(gateway: Gateway) -> None:
    plain = gateway.url.replace("https://", "http://")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(plain + "/v1/models") as r:
                await r.read()


async def test_tls_certificate_served(gateway: Gateway) -> None:
    port = int(gateway.url.rsplit(":", 1)[1])
    ctx = gateway.client_ssl()
    _, writer = await asyncio.open_connection("localhost", port, ssl=ctx)
    ssl_obj = writer.get_extra_info("ssl_object")
    assert ssl_obj.version() in ("TLSv1.2", "TLSv1.3")
    assert ssl_obj.getpeercert()["subjectAltName"]
    writer.close()
    await writer.wait_closed()


async def test_sigterm_drains_an_active_stream(
    spawn_gateway: SpawnGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    config_dict["server"]["shutdown_grace_seconds"] = 10
    gp = await spawn_gateway(config_dict)
    upstream.stub.behaviour.pause_after = 2
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            gp.url + "/v1/messages", json=BODY, headers=HEADERS, ssl=gp.client_ssl()
        )
        assert resp.status == 200
        async with asyncio.timeout(5):
            while b"content_block_delta" not in await resp.content.readany():
                pass
        gp.proc.send_signal(signal.SIGTERM)
        # Readiness turns false while the stream is still running...
        await eventually(lambda: readyz_is(http, gp.admin_url, 503), interval=0.05)
        # ...new connections are no longer accepted...
        port = int(gp.url.rsplit(":", 1)[1])
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        # ...and the in-flight stream completes.
        upstream.stub.behaviour.resume.set()
        rest = await resp.read()
        resp.release()
    assert b"message_stop" in rest
    assert await asyncio.to_thread(gp.proc.wait, 15) == 0
    assert '"message": "stopped"' in gp.log()


async def test_server_header_does_not_advertise_versions(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(gateway.url + "/v1/models", ssl=gateway.client_ssl()) as r:
            assert r.headers["Server"] == "zdr-gateway"
        async with http.get(gateway.url + "/nope", ssl=gateway.client_ssl()) as r:
            assert r.status == 404
            assert r.headers["Server"] == "zdr-gateway"


@pytest.mark.parametrize(("access_log", "lines"), [("auto", 0), (True, 1)])
async def test_one_line_per_request_by_default(
    start_gateway: Any,
    config_dict: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    access_log: object,
    lines: int,
) -> None:
    import logging

    config_dict["logging"] = {"access_log": access_log}  # audit: stdout (the default)
    gw = await start_gateway(config_dict)
    caplog.set_level(logging.INFO, logger="gateway.access")
    async with (
        aiohttp.ClientSession() as http,
        http.get(gw.url + "/v1/models", ssl=gw.client_ssl()) as r,
    ):
        assert r.status == 200
    assert len([r for r in caplog.records if r.name == "gateway.access"]) == lines
