"""One upstream connection (`Connection`) and the response being read on it (`Response`).

A `Connection` carries one exchange at a time. Each exchange gets a fresh llhttp
parser (`httptools.HttpResponseParser`) whose callbacks land on its `Response`:
headers are collected until the final (non-1xx) head, then body bytes are queued
for the one consumer and handed over as they arrive, never held back.

Backpressure: once more than `HIGH_WATER` bytes wait for the consumer, reading
from the socket pauses until the consumer has taken them, so memory per response
stays flat whatever its size.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.http1.errors import ClientError, ProtocolFailed, Reset

HIGH_WATER = 64 * 1024
# A large request body goes out this much at a time, the next piece when the transport
# asks for more (resume_writing): handed over whole, the transport (and TLS, its
# ciphertext) would buffer a second copy of it.
BODY_PIECE = 256 * 1024
# Status line plus headers; an upstream sending more is broken (or hostile).
MAX_HEAD = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


class Owner(Protocol):
    """What a connection tells its pool."""

    def finished(self, conn: Connection, resp: Response, reusable: bool) -> None: ...
    def lost(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.exchanges = 0
        # Set by the pool while the connection waits in its idle list.
        self.idle = False
        self.idle_since = 0.0
        self._response: Response | None = None
        self._unsent: memoryview | None = None
        self._write_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not always an asyncio.Transport subclass (uvloop's TLS transport is not).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        resp = self._response
        if resp is None:
            # Bytes nobody asked for (the peer thinks otherwise about the exchange):
            # the connection can no longer be trusted to frame a response.
            self.abort()
            return
        resp.feed(data)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost ends the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self._unsent = None
        resp, self._response = self._response, None
        if resp is not None:
            resp.connection_lost(exc)
        self.owner.lost(self)

    def send(
        self,
        head: bytes,
        body: bytes | bytearray | None,
        method: str,
        head_by: float,
        done_by: float,
    ) -> Response:
        """Write one request; its response arrives on the returned `Response`."""
        resp = Response(self, method, head_by, done_by)
        self.exchanges += 1
        transport = self.transport
        if transport is None or transport.is_closing():
            resp.fail(Reset("connection closed before the request was sent"))
            return resp
        self._response = resp
        if body is None:
            transport.write(head)
        elif len(body) < 16 * 1024:
            transport.write(head + body)  # one segment for the common small JSON body
        else:
            transport.write(head)
            self._unsent = memoryview(body)
            self._write_unsent()
        return resp

    def _write_unsent(self) -> None:
        # PERF: bench.held (8 x 16 MiB, plaintext): 1.34 -> 1.28 MiB resident per MiB
        # held, with the listener's 16 KiB reads; the transport's copy stays <= 256 KiB.
        transport = self.transport
        while self._unsent is not None and not self._write_paused:
            if transport is None or transport.is_closing():
                self._unsent = None
                return
            piece, rest = self._unsent[:BODY_PIECE], self._unsent[BODY_PIECE:]
            self._unsent = rest if rest else None
            transport.write(bytes(piece))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._write_unsent()

    def finished(self, resp: Response, reusable: bool) -> None:
        if self._response is resp:
            self._response = None
        self.owner.finished(self, resp, reusable and not self.closed)

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    def abort(self) -> None:
        """Drop the connection at once (RST, nothing flushed): ends the upstream request."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self.owner.lost(self)

    def close(self) -> None:
        """Close an idle connection politely (TLS close_notify)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self.owner.lost(self)


class Response:
    """Status, headers and the body as an async iterator of chunks as they arrive.

    `release()` ends the exchange: a complete keep-alive response returns the
    connection to its pool, anything else closes it.
    """

    status: int
    headers: CIMultiDictProxy[str]
    content_type: str
    content_length: int | None

    def __init__(self, conn: Connection, method: str, head_by: float, done_by: float) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._conn = conn
        self._parser = httptools.HttpResponseParser(self)
        self._raw: list[tuple[str, str]] = []
        self._head_seen = 0  # bytes received while the head is incomplete
        self._head_size = 0  # header names and values
        self.head: asyncio.Future[None] = loop.create_future()
        self._chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._exc: BaseException | None = None
        self.complete = False
        self.received = False
        self._interim = False
        self._eof_body = False
        self._keep_alive = False
        self._head_only = method == "HEAD"
        self._released = False
        # Loop times by which the head, and the whole response, must be in (`expired`).
        self.head_by = head_by
        self.done_by = done_by

    # --- the consumer's side -----------------------------------------------------------

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self.buffered = 0
                if self.paused:
                    self.paused = False
                    self._conn.resume_reading()
                return data
            if self._exc is not None:
                raise self._exc
            if self.complete:
                raise StopAsyncIteration
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def release(self) -> None:
        """End of the exchange. Idempotent."""
        if self._released:
            return
        self._released = True
        reusable = self.complete and self._keep_alive and self._exc is None
        if reusable and self.paused:
            self.paused = False
            self._conn.resume_reading()
        self._chunks.clear()
        self._conn.finished(self, reusable)

    # --- the connection's side ---------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.received = True
        if self._exc is not None:
            return
        if self.complete:
            # More bytes after a complete response: pipelined garbage or a second
            # response nobody asked for. The response stands; the connection does not.
            self._keep_alive = False
            return
        head_pending = not self.head.done()
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            if self.complete:
                self._keep_alive = False
            else:
                self.fail(ProtocolFailed("malformed response"))
            return
        if head_pending and not self.head.done():
            self._head_seen += len(data)
            if self._head_seen > MAX_HEAD:
                self.fail(ProtocolFailed("response head too large"))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.complete or self._exc is not None:
            return
        if exc is None and self._eof_body and self.head.done():
            self._finish()  # a body delimited by the end of the connection
        else:
            self.fail(Reset("connection ended before the response did"))

    def fail(self, exc: BaseException) -> None:
        """The exchange cannot complete: wake whoever waits, drop the connection."""
        if self._exc is not None or self.complete:
            return
        self._exc = exc
        if not self.head.done():
            self.head.set_exception(exc)
            # Retrieved by the pool, unless the requester was cancelled meanwhile.
            self.head.exception()
        self._wake()
        self._conn.abort()

    def expired(self, now: float) -> bool:
        if self.complete or self._exc is not None:
            return False
        return now >= self.done_by or (now >= self.head_by and not self.head.done())

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    # --- llhttp callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            raise _Extra  # stops the parser: see `feed`

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD:
            raise ProtocolFailed("response head too large")
        # As aiohttp decodes them: invalid UTF-8 survives as the same bytes when re-sent.
        self._raw.append(
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        )

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            if status == 101:
                raise ProtocolFailed("unrequested protocol switch")
            self._interim = True  # 1xx: its headers are not the response's
            self._raw = []
            return
        headers = CIMultiDict(self._raw)
        self._raw = []
        self.status = status
        self.headers = CIMultiDictProxy(headers)
        self._keep_alive = self._parser.should_keep_alive() and not self._head_only
        length = headers.get("content-length")
        self.content_length = int(length) if length is not None else None
        ctype = headers.get("content-type")
        self.content_type = (
            ctype.partition(";")[0].strip().lower() if ctype else "application/octet-stream"
        )
        transfer = headers.get("transfer-encoding")
        chunked = transfer is not None and transfer.rpartition(",")[2].strip().lower() == "chunked"
        self._eof_body = length is None and not chunked and status not in _NO_BODY_STATUS
        self.head.set_result(None)
        if self._head_only:
            self._finish()  # llhttp cannot be told a HEAD response has no body

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self._chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused:
            self.paused = True
            self._conn.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if not self.complete:
            self._finish()


class _Extra(ClientError):
    """Internal: a second response began on the connection."""
