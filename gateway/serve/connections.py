"""Client connections: a cap on how many are open, and a deadline on every phase.

`GatedSite` listens like `web.TCPSite`, but every accepted socket goes through a
`ConnectionGate` first:

- at `server.limits.max_connections` open connections, a new one is closed as soon as
  it is accepted — before any TLS work — and counted; so a flood of idle or slow
  connections cannot use up the process's file descriptors (docs/limits.md has
  the open-files arithmetic);
- TLS is layered on by the gate with the loop's own SSLProtocol (uvloop's compiled one
  under `serve`, the one `loop.create_server(ssl=...)` would use) and
  `server.timeouts.handshake`;
- the HTTP handler (`GuardedHandler`) closes a connection whose request head is not
  complete within `server.timeouts.head` of its first byte, and one idle between
  requests for `server.timeouts.idle` (aiohttp's keep-alive timer).

The body deadline is the body stage's; the upstream ones are the upstream client's.
Every closure for a missed deadline is counted by phase in
zdr_gateway_client_connection_timeouts_total.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from asyncio import sslproto
from typing import Any

from aiohttp import web

from gateway.observe.metrics import Metrics
from gateway.serve.quiet import _QuietHandler
from gateway.serve.settings import ClientTimeouts

log = logging.getLogger("gateway.http")

# After an answer given before the body was read (408, 413, 529), aiohttp reads and drops
# the rest for this long so the client sees the answer rather than a reset. Its default,
# 10 s, let a trickling client hold the connection that much past any deadline.
LINGER_SECONDS = 1.0
# TLS read size and ciphertext held per connection (a TLS record is at most 16 KiB).
READ_BUFFER = 64 * 1024


class GuardedHandler(_QuietHandler):
    """aiohttp's handler with a deadline on the request head."""

    __slots__ = ("_gate", "_head_seconds", "_head_timer", "_timeouts_metric")

    def __init__(self, gate: ConnectionGate | None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = gate  # set when this handler is the socket's own protocol (no TLS)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_seconds = 0.0
        self._timeouts_metric: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._gate is None:
            # Under TLS: at most 64 KiB of ciphertext waits while the handler is not
            # reading, not 256 KiB; every connection uploading a body holds it, outside
            # the body budget (docs/limits.md).
            transport.set_read_buffer_limits(high=READ_BUFFER)  # type: ignore[attr-defined]

    async def start(self) -> None:
        try:
            await super().start()
        except Exception as exc:
            # SECURITY: aiohttp's loop can die on a head its parser accepts and its request
            # factory does not (`CONNECT ` with no target: url None). The connection would
            # then stay open with no timer left on it: every deadline bypassed.
            log.warning("malformed request refused", extra={"error_class": type(exc).__name__})
            self._abort()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._messages or self._request_in_progress:
            # A complete head (or a body for the request being handled): no head deadline.
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
        elif self._head_timer is None and not self._force_close:
            # SECURITY: bytes of a head that is not complete yet. A client trickling a
            # head would otherwise hold the connection until the idle deadline.
            self._head_timer = self._loop.call_later(self._head_seconds, self._head_late)

    def _head_late(self) -> None:
        self._head_timer = None
        waiter = self._waiter
        if self._request_in_progress or self._messages:
            return
        if waiter is not None and waiter.done():
            return
        self._timeouts_metric.labels("head").inc()
        self._abort()

    def _process_keepalive(self) -> None:
        closed = self._force_close
        super()._process_keepalive()
        if self._force_close and not closed:
            self._timeouts_metric.labels("idle").inc()

    def _abort(self) -> None:
        # abort, not close: a client that missed a deadline gets no graceful TLS shutdown
        # to hold the connection open through.
        transport = self.transport
        self.force_close()
        if transport is not None:
            transport.abort()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.closed()


class _Counted:
    """Mixed into the loop's SSLProtocol: the gate counts the socket until it closes, and
    a handshake that missed its deadline is counted by phase."""

    _gate: ConnectionGate | None = None
    _handler: GuardedHandler | None = None

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)  # type: ignore[misc]
        gate, self._gate = self._gate, None
        handler, self._handler = self._handler, None
        if gate is None:
            return
        gate.closed()
        # Both SSLProtocols end a handshake past its deadline with ConnectionAbortedError,
        # before the handler is connected (its connection_made comes after the handshake).
        if isinstance(exc, ConnectionAbortedError) and handler and handler.transport is None:
            gate.metrics.connection_timeouts.labels("handshake").inc()


class _AsyncioTLS(_Counted, sslproto.SSLProtocol):
    """asyncio's TLS: reads of 64 KiB and at most 64 KiB of ciphertext waiting while the
    handler is not reading, not 256 KiB of each (tests/serve/test_memory.py)."""

    max_size = READ_BUFFER


def _tls_protocol(loop: asyncio.AbstractEventLoop) -> type[Any]:
    """The loop's own TLS: uvloop's compiled SSLProtocol where the loop is uvloop's."""
    with contextlib.suppress(ImportError):
        import uvloop
        import uvloop.loop

        if isinstance(loop, uvloop.Loop):
            # PERF: uvloop's compiled TLS, not asyncio's pure-Python one: TLS JSON CPU per
            # request 1.16-1.52x lower (bench/README.md, "connection gate").
            class _UvloopTLS(_Counted, uvloop.loop.SSLProtocol):  # type: ignore[misc,name-defined]
                pass

            return _UvloopTLS
    return _AsyncioTLS


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # SECURITY: at the cap the socket is closed at once (RST, no TLS, no parsing).
        transport.abort()  # type: ignore[attr-defined]


class ConnectionGate:
    """The protocol factory of the listening socket: counts and caps connections."""

    def __init__(
        self,
        server: web.Server,
        ssl_context: ssl.SSLContext | None,
        timeouts: ClientTimeouts,
        max_connections: int,
        metrics: Metrics,
    ) -> None:
        self.server = server
        self.ssl_context = ssl_context
        self.timeouts = timeouts
        self.max_connections = max_connections
        self.metrics = metrics
        self.open = 0
        self._tls = _tls_protocol(server._loop)
        self._kwargs = {
            **server._kwargs,
            "keepalive_timeout": timeouts.idle,
            "lingering_time": LINGER_SECONDS,
            # aiohttp queues up to twice this of a body the handler has not read yet.
            "read_bufsize": 16 * 1024,
        }

    def __call__(self) -> asyncio.BaseProtocol:
        if self.open >= self.max_connections:
            self.metrics.connections_refused.inc()
            return _Refused()
        self.open += 1
        self.metrics.connections_open.inc()
        server = self.server
        tls = self.ssl_context is not None
        handler = GuardedHandler(None if tls else self, server, loop=server._loop, **self._kwargs)
        handler._head_seconds = self.timeouts.head
        handler._timeouts_metric = self.metrics.connection_timeouts
        if self.ssl_context is None:
            return handler
        protocol: asyncio.BaseProtocol = self._tls(
            server._loop,
            handler,
            self.ssl_context,
            None,  # no waiter: nobody awaits a server-side handshake
            server_side=True,
            ssl_handshake_timeout=self.timeouts.handshake,
        )
        protocol._gate = self  # type: ignore[attr-defined]
        protocol._handler = handler  # type: ignore[attr-defined]
        return protocol

    def closed(self) -> None:
        self.open -= 1
        self.metrics.connections_open.dec()


class GatedSite(web.TCPSite):
    """A TCPSite whose accepted sockets go through a `ConnectionGate`."""

    __slots__ = ("_gate_args", "gate")

    def __init__(self, runner: web.BaseRunner, gate_args: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(runner, **kwargs)
        self._gate_args = gate_args

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert isinstance(server, web.Server)
        self.gate = ConnectionGate(server, self._ssl_context, **self._gate_args)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.gate,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
