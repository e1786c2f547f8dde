"""The audit trail: build, seal and write one event per finished request.

`Auditor.emit(ctx, client_ip=...)` is the hook the observe stage calls once
per request, after the response has ended (errors included). A failed write
is logged as metadata (exception class) and does not fail the request.

Inside the event loop, the lines of every request that ends in one turn of the
loop are written together at the end of that turn: one write (and, for the file
sink with `fsync`, one flush to disk) for all of them instead of one each. The
line is sealed at once, so the chain order is the order requests ended; it
reaches the sink within the same turn. Outside a loop (CLI, tests) each line is
written at once. `close()` writes whatever is pending.
"""

from __future__ import annotations

import asyncio
import logging
from typing import IO

import orjson

from gateway.audit import event as events
from gateway.audit.chain import Chain
from gateway.audit.settings import AuditSettings
from gateway.audit.sinks import FileSink, NullSink, Sink, StreamSink
from gateway.context import RequestContext

log = logging.getLogger("gateway.audit")


class Auditor:
    def __init__(self, settings: AuditSettings, sink: Sink) -> None:
        self.settings = settings
        self.sink = sink
        key = settings.chain_key.encode() if settings.chain_key else None
        self.chain = Chain.resume(sink.last_line(), key) if settings.chain else None
        # Events that could not be written (counted, logged as metadata, never raised).
        self.failures = 0
        self._pending: list[str] = []

    @classmethod
    def open(cls, settings: AuditSettings, stdout: IO[str] | None = None) -> Auditor:
        sink: Sink
        if settings.sink == "file":
            assert settings.path is not None  # enforced by AuditSettings
            sink = FileSink(settings.path, fsync=settings.fsync)
        elif settings.sink == "stdout":
            sink = StreamSink(stdout)
        else:
            sink = NullSink()
        return cls(settings, sink)

    def _ip_hash(self, client_ip: str | None) -> str | None:
        if self.settings.client_ip == "hashed" and client_ip and self.settings.client_ip_key:
            return events.hash_ip(client_ip, self.settings.client_ip_key)
        return None

    def line(self, ctx: RequestContext, client_ip: str | None = None) -> str:
        event = events.build(ctx, client_ip_hash=self._ip_hash(client_ip))
        if self.chain is not None:
            return self.chain.seal_line(event)
        return orjson.dumps(event).decode()

    def emit(self, ctx: RequestContext, client_ip: str | None = None) -> None:
        if isinstance(self.sink, NullSink):
            return
        pending = self._pending
        pending.append(self.line(ctx, client_ip))
        if len(pending) > 1:
            return  # a write is already scheduled for the end of this turn
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no event loop: write now
            self.flush()

    def flush(self) -> None:
        lines, self._pending = self._pending, []
        if not lines:
            return
        try:
            self.sink.write("\n".join(lines) + "\n")
        except OSError as exc:
            self.failures += len(lines)
            log.error(
                "audit write failed",
                extra={"error_class": type(exc).__name__, "count": len(lines)},
            )

    def close(self) -> None:
        self.flush()
        self.sink.close()
