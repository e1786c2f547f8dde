"""Fixtures for the HTTP/1.1 client: raw asyncio servers that say exactly what a test
scripts (including what no well-behaved server would), and a pool factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.http1 import Pool
from tests.support.eventually import eventually

# (the server's state, the connection's reader and writer)
Script = Callable[["RawServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawServer:
    port: int
    connections: int = 0
    # Connections whose peer (the client) has closed: counted by `read_request` at EOF.
    closed_by_client: int = 0
    heads: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """One request head (and its Content-Length body); None at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.closed_by_client += 1
            return None
        self.heads.append(head)
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
        return head


StartRaw = Callable[[Script], Awaitable[RawServer]]


@pytest.fixture
async def raw_server() -> AsyncIterator[StartRaw]:
    servers: list[asyncio.Server] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def start(script: Script) -> RawServer:
        state = RawServer(0)

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            state.connections += 1
            tasks.add(asyncio.current_task())  # type: ignore[arg-type]
            try:
                await script(state, reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        servers.append(server)
        state.port = server.sockets[0].getsockname()[1]
        return state

    yield start
    for server in servers:
        server.close()
    for task in tasks:
        task.cancel()
    for server in servers:
        await server.wait_closed()


MakePool = Callable[..., Pool]


@pytest.fixture
async def make_pool() -> AsyncIterator[MakePool]:
    pools: list[Pool] = []

    def make(url: str, **kw: Any) -> Pool:
        opts: dict[str, Any] = {
            "tls": None,
            "limit": 10,
            "connect_timeout": 2.0,
            "first_byte_timeout": 5.0,
            "total_timeout": 10.0,
        }
        pool = Pool(url, **{**opts, **kw})
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.close()


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait for a condition that an event elsewhere makes true (bounded)."""
    await eventually(condition, timeout=seconds, interval=0.005)


async def read_all(resp: Any) -> bytes:
    return b"".join([chunk async for chunk in resp])
