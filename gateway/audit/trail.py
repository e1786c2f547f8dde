"""The audit trail: build, seal and write one event per finished request.

`Auditor.emit(ctx, client_ip=...)` is the hook the observe stage calls once
per request, after the response has ended (errors included). A failed write
is logged as metadata (exception class) and does not fail the request.
"""

from __future__ import annotations

import logging
from typing import IO

import orjson

from gateway.audit import event as events
from gateway.audit.chain import Chain
from gateway.audit.settings import AuditSettings
from gateway.audit.sinks import FileSink, NullSink, Sink, StreamSink
from gateway.state import RequestContext

log = logging.getLogger("gateway.audit")


class Auditor:
    def __init__(self, settings: AuditSettings, sink: Sink) -> None:
        self.settings = settings
        self.sink = sink
        key = settings.chain_key.encode() if settings.chain_key else None
        self.chain = Chain.resume(sink.last_line(), key) if settings.chain else None
        self.failures = 0

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
        line = self.line(ctx, client_ip)
        try:
            self.sink.write(line)
        except OSError as exc:
            self.failures += 1
            log.error(
                "audit write failed",
                extra={"error_class": type(exc).__name__, "request_id": ctx.request_id},
            )

    def close(self) -> None:
        self.sink.close()
