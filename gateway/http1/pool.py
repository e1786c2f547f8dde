"""Keep-alive connections to one origin, at most `limit` of them open at a time.

- Idle connections are reused last in, first out (the warmest first) and closed
  after `keepalive` seconds unused. A connection the peer closed while idle has
  left the list by then (`lost`), so it is never handed out.
- With `limit` connections open, requests queue (first come, first served): a
  connection coming back, or the slot of one that closed, goes to the first.
  Waiting for it, like each connection attempt, is bounded by `connect_timeout`.
- `first_byte_timeout` bounds request sent → response head; `total_timeout` the
  whole exchange: queueing, connecting, and the response up to its last byte.

Deadlines of exchanges in flight and idle expiry are checked by one timer per
pool, every eighth of the shortest timeout (at most a second), not by a timer
per request: a timer costs more than the rest of the client's bookkeeping for a
request, and a deadline met within 12.5 % is as good (forward's idle deadline
moves in the same steps).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Iterable
from urllib.parse import urlsplit

from gateway.http1.errors import ConnectFailed, ConnectTimeout, Reset, TLSFailed
from gateway.http1.protocol import Connection, Response
from gateway.http1.request import encode_head

# Idle connections are closed after this long (aiohttp's default too). Well under the
# idle timeouts of providers' load balancers (60 s and more), so that we, not the peer,
# close an idle connection, and a request rarely races a close in flight.
KEEPALIVE_SECONDS = 15.0


class Pool:
    def __init__(
        self,
        url: str,
        *,
        tls: ssl.SSLContext | None,
        limit: int,
        connect_timeout: float,
        first_byte_timeout: float,
        total_timeout: float,
        keepalive: float = KEEPALIVE_SECONDS,
    ) -> None:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s) URL")
        if https and tls is None:
            raise ValueError("an https origin needs a TLS context")
        host = parts.hostname
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
        default = 443 if https else 80
        self._host = host
        self._port = parts.port or default
        # Plain http only when the URL says so.
        self._tls = tls if https else None
        authority = f"[{host}]" if ":" in host else host
        self.host_header = authority if self._port == default else f"{authority}:{self._port}"
        self.base_path = parts.path.rstrip("/")
        self._limit = limit
        self._connect_timeout = connect_timeout
        self._first_byte_timeout = first_byte_timeout
        self._total_timeout = total_timeout
        self._keepalive = keepalive
        self._tick_every = min(1.0, first_byte_timeout / 8, total_timeout / 8, keepalive / 8)
        self._open = 0  # connected, connecting, or a slot handed to a waiter
        self._all: set[Connection] = set()
        self._idle: list[Connection] = []
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._in_flight: set[Response] = set()
        self._ticker: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | bytearray | None = None,
    ) -> Response:
        """Send one request; return once the response head is in.

        Raises `UnsafeRequest` before anything is sent, `ClientError` subclasses,
        `TimeoutError`. The caller must `release()` the response.
        """
        head = encode_head(
            method,
            self.base_path + target,
            self.host_header,
            headers,
            None if body is None else len(body),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._total_timeout
        while True:
            conn = await self._acquire(deadline)
            reused = conn.exchanges > 0
            head_by = min(loop.time() + self._first_byte_timeout, deadline)
            resp = conn.send(head, body, method, head_by, deadline)
            self._in_flight.add(resp)
            self._arm()
            try:
                await resp.head
            except Reset:
                resp.release()
                # A kept-alive connection the peer closed as we wrote to it, without a
                # byte back. Only a GET is sent again (on another connection): it changes
                # nothing upstream. A POST is never resent once written: the upstream may
                # already be running it, and a second one would be billed twice.
                if reused and method == "GET" and not resp.received:
                    continue
                raise
            except BaseException:
                resp.release()
                raise
            return resp

    async def close(self) -> None:
        self._closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self._idle = []
        for conn in list(self._all):
            conn.idle = False
            conn.abort()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectFailed("pool closed"))
        await asyncio.sleep(0)  # let the transports finish closing

    # --- connections in and out ---------------------------------------------------------

    async def _acquire(self, deadline: float) -> Connection:
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise ConnectFailed("pool closed")
            idle = self._idle
            while idle:
                conn = idle.pop()
                conn.idle = False
                if loop.time() - conn.idle_since > self._keepalive:
                    conn.close()
                    continue
                return conn
            if self._open < self._limit:
                self._open += 1
                return await self._connect(deadline)
            got = await self._wait(deadline)
            if got is None:
                return await self._connect(deadline)  # a slot was handed over
            if not got.closed:
                return got
            # Closed between hand-over and now: its slot went on in `lost`; queue again.

    async def _wait(self, deadline: float) -> Connection | None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(min(self._connect_timeout, deadline - loop.time())):
                return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed something just as we gave up: pass it on, never drop it.
                got = waiter.result()
                if got is None:
                    self._free_slot()
                else:
                    self._put(got)
            else:
                waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            raise

    async def _connect(self, deadline: float) -> Connection:
        """Open a connection in a slot already counted in `_open`."""
        loop = asyncio.get_running_loop()
        conn = Connection(self)
        try:
            async with asyncio.timeout(min(self._connect_timeout, deadline - loop.time())):
                await loop.create_connection(
                    lambda: conn,
                    self._host,
                    self._port,
                    ssl=self._tls,
                    server_hostname=self._host if self._tls is not None else None,
                )
        except BaseException as exc:
            self._free_slot()
            if isinstance(exc, ssl.SSLError):  # an OSError too: test it first
                raise TLSFailed("TLS handshake with the upstream failed") from None
            if isinstance(exc, TimeoutError):  # an OSError too
                raise ConnectTimeout("connect timed out") from None
            if isinstance(exc, OSError):
                raise ConnectFailed("could not connect") from None
            raise
        if conn.closed or self._closed:
            conn.abort()
            self._free_slot()  # not in `_all` yet, so `lost` did not
            raise ConnectFailed("connection closed while opening")
        self._all.add(conn)
        return conn

    def finished(self, conn: Connection, resp: Response, reusable: bool) -> None:
        """An exchange ended: `reusable` when its response completed on a keep-alive
        connection, which may then carry another."""
        self._in_flight.discard(resp)
        if reusable and not self._closed:
            self._put(conn)
        else:
            conn.abort()

    def _put(self, conn: Connection) -> None:
        if self._closed or conn.closed:
            conn.abort()
            return
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        loop = asyncio.get_running_loop()
        conn.idle = True
        conn.idle_since = loop.time()
        self._idle.append(conn)
        self._arm()

    def lost(self, conn: Connection) -> None:
        """A connection closed (by either side). Idempotent."""
        if conn not in self._all:
            return
        self._all.discard(conn)
        if conn.idle:
            conn.idle = False
            self._idle.remove(conn)
        self._free_slot()

    def _free_slot(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the first in line
                return
        self._open -= 1

    def _arm(self) -> None:
        if self._ticker is None:
            loop = asyncio.get_running_loop()
            self._ticker = loop.call_later(self._tick_every, self._tick)

    def _tick(self) -> None:
        """Fail exchanges past a deadline; close connections idle longer than `keepalive`."""
        loop = asyncio.get_running_loop()
        self._ticker = None
        now = loop.time()
        for resp in [r for r in self._in_flight if r.expired(now)]:
            resp.fail(TimeoutError())  # closes its connection: the upstream request ends
        idle = self._idle  # oldest first
        cutoff = now - self._keepalive
        while idle and idle[0].idle_since <= cutoff:
            conn = idle.pop(0)
            conn.idle = False
            conn.close()
        if self._in_flight or idle:
            self._arm()
