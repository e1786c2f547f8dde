"""Reading responses off real sockets: framing, interim responses, malformed replies,
resets, chunks handed over as they arrive, and backpressure."""

from __future__ import annotations

import asyncio

import pytest

from gateway.http1 import ProtocolFailed, Reset
from gateway.http1.protocol import HIGH_WATER
from tests.http1.conftest import MakePool, RawServer, Script, StartRaw, read_all, until


def replies(*answers: bytes, close: bool = False) -> Script:
    """A script: one scripted answer per request on the connection."""

    async def script(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for answer in answers:
            if await srv.read_request(reader) is None:
                return
            writer.write(answer)
            await writer.drain()
        if not close:
            await srv.read_request(reader)  # keep it open until the client goes

    return script


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)


@pytest.mark.parametrize(
    ("answer", "reusable"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", True),
        (CHUNKED, True),
        # No length, not chunked: the body ends with the connection.
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world", False),
        (b"HTTP/1.0 200 OK\r\n\r\nhello world", False),
    ],
)
async def test_body_framings(
    raw_server: StartRaw, make_pool: MakePool, answer: bytes, reusable: bool
) -> None:
    server = await raw_server(replies(answer, close=not reusable))
    pool = make_pool(server.url)
    resp = await pool.request("GET", "/", [])
    assert resp.status == 200
    assert await read_all(resp) == b"hello world"
    assert resp.complete
    resp.release()
    assert pool.idle_connections == (1 if reusable else 0)


async def test_interim_responses_are_skipped(raw_server: StartRaw, make_pool: MakePool) -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Type: Application/JSON; charset=utf-8\r\n"
        b"X-Twice: 1\r\nX-Twice: 2\r\nContent-Length: 2\r\n\r\n{}"
    )
    server = await raw_server(replies(answer))
    pool = make_pool(server.url)
    resp = await pool.request("POST", "/", [], b"{}")
    assert resp.status == 201
    assert "link" not in resp.headers
    assert resp.headers.getall("x-twice") == ["1", "2"]
    assert resp.content_type == "application/json"
    assert resp.content_length == 2
    assert await read_all(resp) == b"{}"
    resp.release()
    assert pool.idle_connections == 1


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_statuses(raw_server: StartRaw, make_pool: MakePool, status: int) -> None:
    server = await raw_server(replies(f"HTTP/1.1 {status} X\r\n\r\n".encode()))
    pool = make_pool(server.url)
    resp = await pool.request("GET", "/", [])
    assert resp.status == status
    assert await read_all(resp) == b""
    resp.release()
    assert pool.idle_connections == 1


async def test_head_response_has_no_body(raw_server: StartRaw, make_pool: MakePool) -> None:
    server = await raw_server(replies(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"))
    pool = make_pool(server.url)
    resp = await pool.request("HEAD", "/", [])
    assert resp.content_length == 10
    assert await read_all(resp) == b""
    resp.release()
    assert pool.idle_connections == 0  # llhttp cannot frame what follows: not reused


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        # Both framings at once: the classic response-smuggling shape.
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n",
    ],
)
async def test_malformed_head_is_a_protocol_error(
    raw_server: StartRaw, make_pool: MakePool, answer: bytes
) -> None:
    server = await raw_server(replies(answer))
    pool = make_pool(server.url)
    with pytest.raises(ProtocolFailed) as info:
        await pool.request("GET", "/", [])
    assert info.value.kind == "protocol"
    assert b"a" * 10 not in str(info.value).encode()  # nothing of the reply is echoed
    await until(lambda: server.closed_by_client == 1)
    assert pool.open_connections == 0


async def test_malformed_chunk_mid_body(raw_server: StartRaw, make_pool: MakePool) -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
    server = await raw_server(replies(answer))
    pool = make_pool(server.url)
    resp = await pool.request("GET", "/", [])
    assert await resp.__anext__() == b"hello"  # what arrived intact is handed over first
    with pytest.raises(ProtocolFailed):
        await resp.__anext__()
    resp.release()
    await until(lambda: server.closed_by_client == 1)


@pytest.mark.parametrize("rst", [False, True])
async def test_reset_mid_body(raw_server: StartRaw, make_pool: MakePool, rst: bool) -> None:
    async def script(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()
        if rst:
            writer.transport.abort()

    server = await raw_server(script)
    pool = make_pool(server.url)
    resp = await pool.request("GET", "/", [])
    assert await resp.__anext__() == b"0123456789"
    with pytest.raises(Reset) as info:
        await resp.__anext__()
    assert info.value.kind == "reset"
    assert not resp.complete
    resp.release()
    assert pool.open_connections == 0


async def test_eof_before_any_response_is_a_reset(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    async def script(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await srv.read_request(reader)

    server = await raw_server(script)
    pool = make_pool(server.url)
    with pytest.raises(Reset):
        await pool.request("POST", "/", [], b"{}")
    assert pool.open_connections == 0


async def test_bytes_after_a_complete_response_spoil_the_connection(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n"
    server = await raw_server(replies(answer))
    pool = make_pool(server.url)
    resp = await pool.request("GET", "/", [])
    assert await read_all(resp) == b"ok"  # the response itself stands
    resp.release()
    assert pool.idle_connections == 0
    await until(lambda: server.closed_by_client == 1)


async def test_bytes_on_an_idle_connection_close_it(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    gate = asyncio.Event()

    async def script(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await gate.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno")  # unasked
        await srv.read_request(reader)

    server = await raw_server(script)
    pool = make_pool(server.url)
    resp = await pool.request("GET", "/", [])
    await read_all(resp)
    resp.release()
    assert pool.idle_connections == 1
    gate.set()
    await until(lambda: pool.idle_connections == 0)
    assert pool.open_connections == 0


async def test_chunks_are_handed_over_as_they_arrive(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    resume = asyncio.Event()

    async def script(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await resume.wait()
        writer.write(b"4\r\nrest\r\n0\r\n\r\n")
        await srv.read_request(reader)

    server = await raw_server(script)
    pool = make_pool(server.url)
    resp = await pool.request("GET", "/", [])
    async with asyncio.timeout(5):
        assert await resp.__anext__() == b"first"
    assert not resume.is_set()  # the upstream is still waiting: nothing was held back
    resume.set()
    assert await read_all(resp) == b"rest"
    resp.release()
    assert pool.idle_connections == 1


async def test_backpressure_keeps_memory_flat(raw_server: StartRaw, make_pool: MakePool) -> None:
    size = 32 << 20  # far more than loopback socket buffers hold
    block = b"x" * (64 << 10)
    written = 0

    async def script(
        srv: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal written
        await srv.read_request(reader)
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        while written < size:
            writer.write(block)
            written += len(block)
            await writer.drain()
        await srv.read_request(reader)

    server = await raw_server(script)
    pool = make_pool(server.url)
    resp = await pool.request("GET", "/", [])
    received = len(await resp.__anext__())
    # A slow consumer: takes nothing for now. Reading from the socket must pause.
    await until(lambda: resp.paused)
    peak = resp.buffered
    assert written < size  # the upstream is held back by TCP flow control, not buffered here
    while True:
        peak = max(peak, resp.buffered)
        try:
            received += len(await resp.__anext__())
        except StopAsyncIteration:
            break
    assert received == size
    # Bounded by the high-water mark plus at most one socket read past it.
    assert peak <= HIGH_WATER + (256 << 10)
    resp.release()
    assert pool.idle_connections == 1
