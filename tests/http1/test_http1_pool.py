"""The pool over real sockets: keep-alive reuse, the connection limit, verified TLS,
connect failures, the total deadline, and what is (never) sent twice."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import pytest
import trustme
from aiohttp import web

from gateway.http1 import ConnectFailed, Reset, TLSFailed, UnsafeRequest
from gateway.serve.tls import client_context
from tests.http1.conftest import MakePool, RawServer, StartRaw, read_all, until

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def answer_ok(srv: RawServer, reader: Any, writer: Any) -> None:
    """A raw server script: every request on the connection gets OK."""
    while await srv.read_request(reader) is not None:
        writer.write(OK)


async def echo_server(aiohttp_server: Any, **kw: Any) -> tuple[Any, list[tuple[str, int]]]:
    """An aiohttp server that answers every request; records each request's client port."""
    peers: list[tuple[str, int]] = []

    async def handler(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername")[:2])  # type: ignore[union-attr]
        return web.json_response({"path": request.path_qs, "body": (await request.read()).decode()})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return await aiohttp_server(app, **kw), peers


async def test_sequential_requests_share_one_connection(
    aiohttp_server: Any, make_pool: MakePool
) -> None:
    server, peers = await echo_server(aiohttp_server)
    pool = make_pool(f"http://127.0.0.1:{server.port}/base/")
    for i in range(5):
        resp = await pool.request("POST" if i % 2 else "GET", f"/v1/{i}?q=1", [], b"{}")
        assert resp.status == 200
        assert b'"path": "/base/v1/' in await read_all(resp)
        resp.release()
    assert len(set(peers)) == 1
    assert pool.open_connections == 1
    assert pool.idle_connections == 1


async def test_request_on_the_wire_is_exactly_what_was_given(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    async def script(srv: RawServer, reader: Any, writer: Any) -> None:
        await srv.read_request(reader)
        writer.write(OK)
        await srv.read_request(reader)

    server = await raw_server(script)
    pool = make_pool(server.url)
    resp = await pool.request("POST", "/v1/messages", [("x-api-key", "upstream-key")], b"{}")
    resp.release()
    assert server.heads == [
        b"POST /v1/messages HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{server.port}\r\n".encode()
        + b"x-api-key: upstream-key\r\nContent-Length: 2\r\n\r\n"
    ]


async def test_unsafe_header_is_refused_before_anything_is_sent(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    async def script(srv: RawServer, reader: Any, writer: Any) -> None:
        await srv.read_request(reader)

    server = await raw_server(script)
    pool = make_pool(server.url)
    with pytest.raises(UnsafeRequest):
        await pool.request("POST", "/", [("x-a", "1\r\nx-api-key: stolen")], b"{}")
    assert server.connections == 0
    assert pool.open_connections == 0


async def test_a_connection_closed_while_idle_is_not_reused(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    async def script(srv: RawServer, reader: Any, writer: Any) -> None:
        await srv.read_request(reader)
        writer.write(OK)  # keep-alive by HTTP/1.1 default ... then closes anyway
        await writer.drain()

    server = await raw_server(script)
    pool = make_pool(server.url)
    resp = await pool.request("POST", "/", [], b"{}")
    assert await read_all(resp) == b"ok"
    resp.release()
    await until(lambda: pool.idle_connections == 0)  # the close was noticed while idle
    assert pool.open_connections == 0
    resp = await pool.request("POST", "/", [], b"{}")  # a POST: only safe on a fresh one
    assert await read_all(resp) == b"ok"
    resp.release()
    assert server.connections == 2
    assert len(server.heads) == 2


def _drop_second_request() -> Any:
    """A server that answers the first request on a connection, then closes the
    connection when the second arrives, without answering: what a client sees when
    the peer's keep-alive timer fires just as it sends."""

    async def script(srv: RawServer, reader: Any, writer: Any) -> None:
        await srv.read_request(reader)
        writer.write(OK)
        await writer.drain()
        await srv.read_request(reader)

    return script


async def test_a_post_is_never_sent_twice(raw_server: StartRaw, make_pool: MakePool) -> None:
    server = await raw_server(_drop_second_request())
    pool = make_pool(server.url)
    resp = await pool.request("POST", "/", [], b"{}")
    await read_all(resp)
    resp.release()
    with pytest.raises(Reset):
        await pool.request("POST", "/", [], b"{}")
    assert [h.split(b" ")[0] for h in server.heads] == [b"POST", b"POST"]
    assert server.connections == 1


async def test_a_get_on_a_stale_connection_is_retried_once(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    server = await raw_server(_drop_second_request())
    pool = make_pool(server.url)
    resp = await pool.request("GET", "/", [])
    await read_all(resp)
    resp.release()
    resp = await pool.request("GET", "/", [])
    assert await read_all(resp) == b"ok"
    resp.release()
    assert server.connections == 2
    assert len(server.heads) == 3


async def test_idle_connections_expire(raw_server: StartRaw, make_pool: MakePool) -> None:
    async def script(srv: RawServer, reader: Any, writer: Any) -> None:
        await srv.read_request(reader)
        writer.write(OK)
        await srv.read_request(reader)

    server = await raw_server(script)
    pool = make_pool(server.url, keepalive=0.05)
    resp = await pool.request("GET", "/", [])
    resp.release()
    assert pool.idle_connections == 1
    await until(lambda: server.closed_by_client == 1)  # we closed it, unprompted
    assert pool.idle_connections == 0
    assert pool.open_connections == 0


async def test_connection_limit_under_concurrency(aiohttp_server: Any, make_pool: MakePool) -> None:
    in_flight = peak = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)  # hold the connection so that others must queue
        in_flight -= 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handler)
    server = await aiohttp_server(app)
    pool = make_pool(f"http://127.0.0.1:{server.port}", limit=2)

    async def one() -> bytes:
        resp = await pool.request("GET", "/", [])
        assert pool.open_connections <= 2
        try:
            return await read_all(resp)
        finally:
            resp.release()

    assert await asyncio.gather(*(one() for _ in range(12))) == [b"ok"] * 12
    assert peak == 2
    assert pool.open_connections == 2


async def test_waiting_for_a_connection_is_bounded(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    server = await raw_server(answer_ok)
    pool = make_pool(server.url, limit=1, connect_timeout=0.1)
    held = await pool.request("GET", "/", [])
    with pytest.raises(TimeoutError):
        await pool.request("GET", "/", [])
    # A waiter that gives up (cancelled) must not take the slot with it.
    waiter = asyncio.create_task(pool.request("GET", "/", []))
    await asyncio.sleep(0)
    waiter.cancel()
    held.release()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    resp = await pool.request("GET", "/", [])
    assert await read_all(resp) == b"ok"
    resp.release()
    assert server.connections == 1
    assert pool.open_connections == 1


async def test_a_connection_handed_to_a_cancelled_waiter_is_not_lost(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    server = await raw_server(answer_ok)
    pool = make_pool(server.url, limit=1, connect_timeout=0.5)
    held = await pool.request("GET", "/", [])
    waiter = asyncio.create_task(pool.request("GET", "/", []))
    await asyncio.sleep(0)  # now queued
    held.release()  # hands the connection to the waiter ...
    waiter.cancel()  # ... which gives up before it could run
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.idle_connections == 1
    resp = await pool.request("GET", "/", [])
    resp.release()
    assert server.connections == 1


async def test_connect_refused(make_pool: MakePool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once it is closed
    pool = make_pool(f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectFailed) as info:
        await pool.request("GET", "/", [])
    assert info.value.kind == "connect"
    assert pool.open_connections == 0


async def test_unresolvable_host(make_pool: MakePool) -> None:
    pool = make_pool("http://no-such-host.invalid")
    with pytest.raises(ConnectFailed):
        await pool.request("GET", "/", [])


async def test_total_deadline_bounds_the_whole_exchange(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    async def script(srv: RawServer, reader: Any, writer: Any) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await srv.read_request(reader)  # then silent until the client gives up

    server = await raw_server(script)
    pool = make_pool(server.url, total_timeout=0.3)
    resp = await pool.request("POST", "/", [], b"{}")
    assert await resp.__anext__() == b"first"
    with pytest.raises(TimeoutError):
        await resp.__anext__()
    resp.release()
    await until(lambda: server.closed_by_client == 1)  # the upstream request ended too


@pytest.mark.parametrize("timeout", ["first_byte_timeout", "total_timeout"])
async def test_deadline_before_the_head(
    raw_server: StartRaw, make_pool: MakePool, timeout: str
) -> None:
    async def script(srv: RawServer, reader: Any, writer: Any) -> None:
        await srv.read_request(reader)
        await srv.read_request(reader)

    server = await raw_server(script)
    pool = make_pool(server.url, **{timeout: 0.2})
    with pytest.raises(TimeoutError):
        await pool.request("GET", "/", [])
    await until(lambda: server.closed_by_client == 1)
    assert pool.open_connections == 0


async def test_close_ends_exchanges_and_refuses_new_ones(
    raw_server: StartRaw, make_pool: MakePool
) -> None:
    async def script(srv: RawServer, reader: Any, writer: Any) -> None:
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
        await srv.read_request(reader)

    server = await raw_server(script)
    pool = make_pool(server.url)
    resp = await pool.request("GET", "/", [])
    assert await resp.__anext__() == b"01234"
    await pool.close()
    with pytest.raises(Reset):
        await resp.__anext__()
    resp.release()
    with pytest.raises(ConnectFailed):
        await pool.request("GET", "/", [])


@pytest.fixture
def tls_files(tls_ca: trustme.CA, tmp_path: Any) -> tuple[ssl.SSLContext, str]:
    """A server context for `localhost` from the test CA, and the CA file."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("localhost").configure_cert(ctx)
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(ca_file)
    return ctx, str(ca_file)


async def test_verified_tls_with_sni(
    aiohttp_server: Any, make_pool: MakePool, tls_files: tuple[ssl.SSLContext, str]
) -> None:
    server_ctx, ca_file = tls_files
    names: list[str | None] = []
    server_ctx.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server, _ = await echo_server(aiohttp_server, ssl=server_ctx)
    pool = make_pool(f"https://localhost:{server.port}", tls=client_context(ca_file))
    for _ in range(2):
        resp = await pool.request("GET", "/x", [])
        assert b'"/x"' in await read_all(resp)
        resp.release()
    assert names == ["localhost"]  # one handshake, with SNI


@pytest.mark.parametrize("trusted", [False, True])
async def test_tls_that_does_not_verify(
    aiohttp_server: Any,
    make_pool: MakePool,
    tls_files: tuple[ssl.SSLContext, str],
    trusted: bool,
) -> None:
    server_ctx, ca_file = tls_files
    server, peers = await echo_server(aiohttp_server, ssl=server_ctx)
    # Untrusted: system CAs only. Trusted CA but the wrong name: 127.0.0.1 is not on it.
    url = f"https://127.0.0.1:{server.port}" if trusted else f"https://localhost:{server.port}"
    pool = make_pool(url, tls=client_context(ca_file if trusted else None))
    with pytest.raises(TLSFailed) as info:
        await pool.request("GET", "/", [])
    assert info.value.kind == "tls"
    assert peers == []
    assert pool.open_connections == 0


async def test_plain_http_only_when_the_url_says_so(make_pool: MakePool) -> None:
    with pytest.raises(ValueError, match="TLS context"):
        make_pool("https://localhost:1", tls=None)
