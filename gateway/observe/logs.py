"""Structured JSON logging that can only carry metadata.

Every line is a JSON object built from a fixed allow-list of field names
(`FIELDS`). The `MetadataFilter` on the handler enforces it for every logger,
the gateway's and third-party ones alike:

- record attributes (``extra=``) outside the allow-list are dropped; allowed
  values must be numbers, booleans or short strings of a safe charset
  (no spaces), anything else becomes ``"invalid"``;
- the message is the *template* (``record.msg``); ``%`` arguments are
  interpolated only when every one is a number — a string argument could be
  client text, so the template is logged instead;
- a third-party logger's message is kept only when it came with arguments
  (then the template is code, not data); otherwise it is replaced by a fixed
  marker, because libraries pre-format messages with request content;
- exceptions are logged as their class name only (``error_class``): never
  ``str(exc)``, never a traceback (frames hold locals and their values).

aiohttp's access log is off (the server passes ``access_log=None``); the
gateway writes its own metadata-only line through `log_request()` when a
request ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

# SECURITY: the complete set of field names a log line may contain.
FIELDS = frozenset(
    {
        # set by the formatter
        "time", "level", "logger", "message", "error_class",
        # request metadata (see log_request)
        "request_id", "key_id", "team", "provider", "upstream", "target", "attempts",
        "endpoint", "method",
        "model", "stream", "status", "error_type", "reason", "decisions",
        "input_tokens", "output_tokens", "cache_read_input_tokens",
        "cache_creation_input_tokens", "bytes_in", "bytes_out", "duration_ms", "ttfb_ms",
        "upstream_status", "upstream_request_id", "stream_error",
        # process metadata
        "event", "host", "port", "admin_port", "pid", "version", "config_hash", "rule",
        "limit", "outcome", "kid", "count", "seconds", "grace_seconds", "tls", "signal",
        "segment", "line",  # audit segments (gateway/audit/writer.py)
        # operator diagnostics (see _OPERATOR_TEXT)
        "config_source", "config_problem",
    }
)  # fmt: skip
# Fields whose values are operator-authored text (a config file's path and the
# validator's explanation of it), never request content: printable, bounded.
_OPERATOR_TEXT = frozenset({"config_source", "config_problem"})
_SAFE = re.compile(r"^[A-Za-z0-9._:/@+=,-]{0,128}$")
_NUMERIC_ARGS = (int, float)
DROPPED = "(message dropped: not gateway-authored)"
_OWN = ("gateway", "zdr_gateway")
# Argument-less messages of libraries that are fixed strings in their source.
KNOWN_FOREIGN = frozenset(
    {
        "Error handling request",
        "Unhandled exception",
        "Task exception was never retrieved",
        "Unclosed client session",
        "Unclosed connector",
    }
)


def _safe_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and _SAFE.match(value):
        return value
    if isinstance(value, list | tuple) and len(value) <= 32:
        return [v if isinstance(v, str) and _SAFE.match(v) else "invalid" for v in value]
    return "invalid"


def _operator_text(value: Any) -> str:
    if isinstance(value, str) and value.isprintable() and len(value) <= 400:
        return value
    return "invalid"


class MetadataFilter(logging.Filter):
    """Rewrites every record in place so that only allow-listed metadata survives."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name.split(".", 1)[0] in _OWN
        template = record.msg if isinstance(record.msg, str) else DROPPED
        args = record.args if isinstance(record.args, tuple) else ()
        if args and all(isinstance(a, _NUMERIC_ARGS) for a in args):
            with contextlib.suppress(TypeError, ValueError):
                template = template % args
        elif not own and not args and template not in KNOWN_FOREIGN:
            template = DROPPED
        error_class = None
        if record.exc_info and record.exc_info[0] is not None:
            error_class = record.exc_info[0].__name__
        keep = {
            k: _operator_text(v) if k in _OPERATOR_TEXT else _safe_value(v)
            for k, v in record.__dict__.items()
            if k in FIELDS
        }
        # SECURITY: drop everything else a record carries — args, exc_info, exc_text,
        # stack_info and any `extra=` attribute not on the allow-list.
        for key in list(record.__dict__):
            if key not in _RECORD_CORE:
                del record.__dict__[key]
        record.__dict__.update(keep)
        record.msg, record.args = template, ()
        record.exc_info = record.exc_text = record.stack_info = None
        if error_class is not None:
            record.error_class = error_class
        return True


# LogRecord attributes the logging machinery itself needs (none carries content
# once msg/args/exc_* are reset).
_RECORD_CORE = frozenset(
    {
        "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
        "lineno", "funcName", "created", "msecs", "relativeCreated", "thread", "threadName",
        "processName", "process", "taskName", "exc_info", "exc_text", "stack_info",
    }
)  # fmt: skip


class MetadataFormatter(JsonFormatter):
    """JSON with the fixed core fields first; relies on MetadataFilter having run."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            reserved_attrs=list(_RECORD_CORE),
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        for key in list(log_data):
            if key not in FIELDS:  # defence in depth: the filter should have removed it
                del log_data[key]


def configure(level: str = "info", stream: IO[str] | None = None) -> logging.Handler:
    """Route all logging through the metadata filter to `stream` (stdout by default)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.addFilter(MetadataFilter())
    handler.setFormatter(MetadataFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Every request writes an access line, so the stdlib's per-record extras are paid on
    # the hot path: the caller lookup walks the stack (~5 µs), thread/process names are
    # read each time. None of them is in a line (FIELDS). (Logging HOWTO, "Optimization".)
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # SECURITY: a failing handler must not print the record (and its traceback) to stderr.
    logging.raiseExceptions = False
    # The gateway writes its own access line (log_request); aiohttp's would carry the path.
    logging.getLogger("aiohttp.access").disabled = True
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    # "Exception ignored in: <repr>" and warnings would go to stderr with reprs and text.
    sys.unraisablehook = _unraisablehook
    logging.captureWarnings(True)
    return handler


_log = logging.getLogger("gateway")
_access = logging.getLogger("gateway.access")


def log_request(fields: Mapping[str, Any]) -> None:
    """The access line: one per request, metadata fields only (others are dropped)."""
    _access.info("request", extra={k: v for k, v in fields.items() if k in FIELDS})


def log_exception(exc: BaseException, request_id: str | None = None) -> None:
    """An unexpected exception: its class name and the request id, nothing else."""
    _log.error(
        "unhandled exception",
        extra={"error_class": type(exc).__name__, "request_id": request_id},
    )


def _excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    _log.critical("uncaught exception", extra={"error_class": kind.__name__})


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    _log.critical("uncaught exception in thread", extra={"error_class": args.exc_type.__name__})


def _unraisablehook(args: Any) -> None:
    _log.error("unraisable exception", extra={"error_class": args.exc_type.__name__})


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """For `loop.set_exception_handler`: asyncio's default prints reprs of tasks and args."""
    exc = context.get("exception")
    _log.error(
        "event loop error",
        extra={"error_class": type(exc).__name__ if exc is not None else None},
    )
