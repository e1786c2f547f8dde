"""Stand-in targets for pool tests: stubs of the Anthropic API over real TLS, and a
target that resets every connection before answering.

- `stand_in(api_key=...)` → `StandIn` (`.stub` steers and records, `.url`).
- `resetter()` → the URL of a TLS server that reads the request head and resets.
- `pool_config(config_dict, targets, **upstream)`: the default upstream as a pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from gateway.demo.stub_anthropic import STUB_API_KEY, StubUpstream
from gateway.serve import server


@dataclass
class StandIn:
    stub: StubUpstream
    url: str


@dataclass
class Resetter:
    url: str
    connections: int = 0


def server_tls(cert_files: dict[str, str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_files["cert_file"], cert_files["key_file"])
    return ctx


@pytest.fixture
async def stand_in(
    cert_files: dict[str, str],
) -> AsyncIterator[Callable[..., Awaitable[StandIn]]]:
    runners: list[tuple[web.AppRunner, StubUpstream]] = []

    async def start(api_key: str = STUB_API_KEY) -> StandIn:
        stub = StubUpstream(api_key)
        runner = web.AppRunner(stub.app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls(cert_files))
        await site.start()
        runners.append((runner, stub))
        return StandIn(stub, f"https://localhost:{server.bound_port(site)}")

    yield start
    for runner, stub in runners:
        stub.behaviour.resume.set()
        await runner.cleanup()


@pytest.fixture
async def resetter(cert_files: dict[str, str]) -> AsyncIterator[Callable[[], Awaitable[Resetter]]]:
    servers: list[asyncio.Server] = []

    async def start() -> Resetter:
        r = Resetter("")

        async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            r.connections += 1
            gone = (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError)
            with contextlib.suppress(*gone):
                await reader.readuntil(b"\r\n\r\n")
            writer.transport.abort()  # no status line: a reset before the response head

        srv = await asyncio.start_server(reset, "127.0.0.1", 0, ssl=server_tls(cert_files))
        servers.append(srv)
        r.url = f"https://localhost:{srv.sockets[0].getsockname()[1]}"
        return r

    yield start
    for srv in servers:
        srv.close()
        await srv.wait_closed()


def pool_config(
    config_dict: dict[str, Any], targets: list[dict[str, Any]], **upstream: Any
) -> dict[str, Any]:
    cfg = copy.deepcopy(config_dict)
    up = cfg["upstreams"][0]
    del up["url"], up["api_key"]
    up["targets"] = [{"api_key": STUB_API_KEY, **t} for t in targets]
    up.update(upstream)
    return cfg
