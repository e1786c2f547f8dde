"""Malformed HTTP is refused without echoing its bytes into a response or a log."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from tests.conftest import Gateway

CANARY = "CANARY-protocol-7f3a9"
MALFORMED = [
    # A header line over aiohttp's limit (a huge bearer token, say).
    f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {CANARY}{'A' * 9000}\r\n\r\n",
    # A request line over the limit (text in the URL).
    f"GET /v1/models?q={CANARY}{'B' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n",
    # An invalid header name token.
    f"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Bad\x01Name: {CANARY}\r\n\r\n",
]


@pytest.mark.parametrize("raw", MALFORMED, ids=["long-header", "long-url", "bad-token"])
async def test_malformed_request_is_not_echoed(
    gateway: Gateway, raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = int(gateway.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("localhost", port, ssl=gateway.client_ssl())
    writer.write(raw.encode("latin-1"))
    await writer.drain()
    async with asyncio.timeout(5):
        response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") or head.startswith(b"HTTP/1.0 400")
    # Not aiohttp's default banner, which names the Python and aiohttp versions.
    assert b"\r\nServer: zdr-gateway\r\n" in head + b"\r\n"
    assert b"aiohttp" not in head
    assert CANARY.encode() not in response
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    formatter = logging.Formatter()
    for record in caplog.records:
        text = formatter.format(record) + repr(record.__dict__)
        assert CANARY not in text
    assert any(r.name == "gateway.http" for r in caplog.records)
