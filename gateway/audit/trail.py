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
from gateway.audit import segment
from gateway.audit.crypto import AuditKey, BadKey, Keyring, parse_key
from gateway.audit.hashchain import HashChain
from gateway.audit.settings import AuditSettings
from gateway.audit.sinks import NullSink, Sink, StreamSink
from gateway.audit.writer import SegmentSink, SinkError
from gateway.context import RequestContext

log = logging.getLogger("gateway.audit")


class Auditor:
    def __init__(self, settings: AuditSettings, sink: Sink) -> None:
        self.settings = settings
        self.sink = sink
        key = settings.chain_key.encode() if settings.chain_key else None
        self.chain = HashChain.resume(sink.last_line(), key) if settings.chain else None
        # Events that could not be written (counted, logged as metadata, never raised).
        self.failures = 0
        self._pending: list[str] = []

    @classmethod
    def open(cls, settings: AuditSettings, stdout: IO[str] | None = None) -> Auditor:
        """The configured sink; a file sink that cannot start raises ConfigError."""
        sink: Sink
        if settings.sink == "file":
            sink = _segments(settings)
        elif settings.sink == "stdout":
            sink = StreamSink(stdout)
        else:
            sink = NullSink()
        return cls(settings, sink)

    def _ip_hash(self, client_ip: str | None) -> str | None:
        if self.settings.client_ip == "hashed" and client_ip and self.settings.client_ip_key:
            return events.hash_ip(client_ip, self.settings.client_ip_key)
        return None

    def _session_hash(self, session_id: str | None) -> str | None:
        key = self.settings.session_id_key
        if self.settings.session_id == "hashed" and session_id and key:
            return events.hash_value(session_id, key)
        return None

    def line(
        self, ctx: RequestContext, client_ip: str | None = None, session_id: str | None = None
    ) -> str:
        event = events.build(
            ctx,
            client_ip_hash=self._ip_hash(client_ip),
            session_id_hash=self._session_hash(session_id),
        )
        if self.chain is not None:
            return self.chain.seal_line(event)
        return orjson.dumps(event).decode()

    def emit(
        self, ctx: RequestContext, client_ip: str | None = None, session_id: str | None = None
    ) -> None:
        if isinstance(self.sink, NullSink):
            return
        pending = self._pending
        pending.append(self.line(ctx, client_ip, session_id))
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
            self.sink.write(lines)
        except OSError as exc:
            self.failures += len(lines)
            log.error(
                "audit write failed",
                extra={"error_class": type(exc).__name__, "count": len(lines)},
            )

    def close(self) -> None:
        self.flush()
        self.sink.close()


def keyring(settings: AuditSettings) -> Keyring:
    """The configured keys, `key_file`s read now; errors name the option, never a value."""
    from gateway.config import ConfigError

    keys = []
    for i, k in enumerate(settings.keys):
        option = f"audit.keys[{i}]"
        try:
            if k.key_file is not None:
                option += ".key_file"
                with open(k.key_file, encoding="utf-8") as f:
                    raw = parse_key(f.read())
            else:
                assert k.key is not None
                raw = parse_key(k.key)
        except OSError as exc:
            raise ConfigError("audit", [(option, f"cannot read: {exc.strerror}")]) from None
        except BadKey as exc:
            raise ConfigError("audit", [(option, str(exc))]) from None
        keys.append(AuditKey.of(k.kid, raw))
    return Keyring(keys)


def _segments(settings: AuditSettings) -> SegmentSink:
    from gateway.config import ConfigError

    assert settings.dir is not None  # enforced by AuditSettings
    try:
        return SegmentSink(
            settings.dir,
            keyring(settings),
            stream=settings.stream,
            rotate_bytes=settings.rotate_bytes,
            rotate_seconds=settings.rotate_seconds,
            retention_days=settings.retention_days,
            fsync=settings.fsync,
        )
    except segment.FormatError as exc:  # the newest segment continues the trail
        message = f"its newest segment cannot be read ({exc}); list its key in audit.keys"
        raise ConfigError("audit", [("audit.dir", message)]) from None
    except SinkError as exc:
        raise ConfigError("audit", [("audit.dir", str(exc))]) from None
    except OSError as exc:
        raise ConfigError("audit", [("audit.dir", f"cannot write: {exc.strerror}")]) from None
