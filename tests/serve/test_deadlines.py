"""Every phase of a client connection has a deadline; missing one closes the connection
and counts it by phase. Real sockets, real TLS, small deadlines to keep the tests fast."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import pytest

from tests.conftest import Gateway, StartGateway
from tests.serve.conftest import closed_within

pytestmark = pytest.mark.both_loops

HEAD = b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\n"
REQUEST = (
    b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n"
    b"content-length: 2\r\n\r\n{}"
)


def timeouts(gw: Gateway, phase: str) -> float:
    return gw.sample("zdr_gateway_client_connection_timeouts_total", phase=phase)


async def test_a_trickled_head_is_closed_at_the_head_deadline(
    start_gateway: StartGateway, plain_config: dict[str, Any]
) -> None:
    plain_config["server"]["timeouts"] = {"head": 0.5, "idle": 30}
    gw = await start_gateway(plain_config)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.running.port)
    started = time.monotonic()
    writer.write(HEAD)

    async def trickle() -> None:
        # One header byte every 0.1 s: progress, but never a complete head.
        while not writer.is_closing():
            await asyncio.sleep(0.1)
            writer.write(b"x")

    task = asyncio.create_task(trickle())
    assert await closed_within(reader, 5)
    took = time.monotonic() - started
    task.cancel()
    writer.close()
    assert 0.4 < took < 2.0
    assert timeouts(gw, "head") == 1
    assert timeouts(gw, "idle") == 0


async def test_a_complete_head_is_not_cut_by_the_head_deadline(
    start_gateway: StartGateway, plain_config: dict[str, Any]
) -> None:
    """The head deadline ends with the head: a slow upstream answer is not the client's."""
    plain_config["server"]["timeouts"] = {"head": 0.3, "idle": 30}
    gw = await start_gateway(plain_config)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.running.port)
    writer.write(HEAD)  # in two parts, so the head timer is armed
    await asyncio.sleep(0.1)
    writer.write(REQUEST[len(HEAD) :])
    status = await reader.readline()
    assert status.startswith(b"HTTP/1.1 200"), status
    await asyncio.sleep(0.5)  # past the head deadline, idle on a kept-alive connection
    writer.write(REQUEST)
    await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert timeouts(gw, "head") == 0


async def test_an_idle_keep_alive_connection_is_closed_at_the_idle_deadline(
    start_gateway: StartGateway, plain_config: dict[str, Any]
) -> None:
    plain_config["server"]["timeouts"] = {"idle": 0.5}
    gw = await start_gateway(plain_config)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.running.port)
    writer.write(REQUEST)
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    await reader.readuntil(b"\r\n\r\n")
    started = time.monotonic()
    assert await closed_within(reader, 5)
    assert 0.4 < time.monotonic() - started < 2.5
    writer.close()
    assert timeouts(gw, "idle") == 1


async def test_a_connection_that_sends_nothing_is_closed_at_the_idle_deadline(
    start_gateway: StartGateway, plain_config: dict[str, Any]
) -> None:
    plain_config["server"]["timeouts"] = {"idle": 0.4}
    gw = await start_gateway(plain_config)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.running.port)
    assert await closed_within(reader, 5)
    writer.close()
    assert timeouts(gw, "idle") == 1


async def test_a_stalled_tls_handshake_is_closed_at_the_handshake_deadline(
    start_gateway: StartGateway, config_dict: dict[str, Any]
) -> None:
    config_dict["server"]["timeouts"] = {"handshake": 0.4}
    gw = await start_gateway(config_dict)
    # TCP connected, not a byte of TLS: the gateway waits for a ClientHello.
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.running.port)
    started = time.monotonic()
    assert await closed_within(reader, 5)
    assert 0.3 < time.monotonic() - started < 2.5
    writer.close()
    assert timeouts(gw, "handshake") == 1
    # A real client still gets through.
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", gw.running.port, ssl=gw.client_ssl(), server_hostname="localhost"
    )
    writer.write(REQUEST)
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_a_trickled_body_gets_408_and_is_counted(
    start_gateway: StartGateway, plain_config: dict[str, Any]
) -> None:
    plain_config["server"]["timeouts"] = {"body": 0.4}
    gw = await start_gateway(plain_config)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.running.port)
    writer.write(REQUEST.replace(b"content-length: 2", b"content-length: 200")[:-2] + b'{"')
    status = await asyncio.wait_for(reader.readline(), 5)
    assert status.startswith(b"HTTP/1.1 408"), status
    writer.close()
    assert timeouts(gw, "body") == 1


async def test_tls_requests_work_through_the_gate(
    start_gateway: StartGateway, config_dict: dict[str, Any]
) -> None:
    """The gate layers TLS itself: the certificate, ALPN and keep-alive behave as before."""
    gw = await start_gateway(config_dict)
    ctx = gw.client_ssl()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", gw.running.port, ssl=ctx, server_hostname="localhost"
    )
    tls = writer.get_extra_info("ssl_object")
    assert isinstance(tls, ssl.SSLObject)
    assert tls.selected_alpn_protocol() == "http/1.1"
    for _ in range(3):
        writer.write(REQUEST)
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    writer.close()
    assert gw.sample("zdr_gateway_client_connections_open") == 1


async def test_a_head_aiohttp_cannot_make_a_request_of_is_closed_at_once(
    start_gateway: StartGateway, plain_config: dict[str, Any]
) -> None:
    """`CONNECT ` with no target parses, then kills aiohttp's connection loop (url None):
    without the guard the socket stayed open with no deadline left on it."""
    plain_config["server"]["timeouts"] = {"idle": 30, "head": 30}
    gw = await start_gateway(plain_config)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.running.port)
    writer.write(b"CONNECT \r\nHost: x\r\n\r\n")
    assert await closed_within(reader, 2)
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.running.port)
    writer.write(REQUEST)
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.close()
