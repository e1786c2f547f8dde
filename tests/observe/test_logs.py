"""gateway/observe/logs.py: whatever a caller passes, only allow-listed metadata is logged."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import threading
from collections.abc import Iterator

import pytest

from gateway.observe import logs

CANARY = "CANARY-logs-91c2e"


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    saved = (sys.excepthook, threading.excepthook, sys.unraisablehook, logging.raiseExceptions)
    root = logging.getLogger()
    old_handlers, old_level = list(root.handlers), root.level
    logs.configure("debug", buf)
    yield buf
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in old_handlers:
        root.addHandler(h)
    root.setLevel(old_level)
    sys.excepthook, threading.excepthook, sys.unraisablehook, logging.raiseExceptions = saved
    logging.captureWarnings(False)
    logging.getLogger("aiohttp.access").disabled = False


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_log_request_keeps_only_allow_listed_fields(out: io.StringIO) -> None:
    logs.log_request(
        {
            "request_id": "req_1",
            "status": 200,
            "model": "claude-sonnet-4-5",
            "decisions": ["override:anthropic.code_execution"],
            "prompt": CANARY,
            "authorization": f"Bearer {CANARY}",
        }
    )
    (line,) = lines(out)
    assert line["request_id"] == "req_1"
    assert line["status"] == 200
    assert line["decisions"] == ["override:anthropic.code_execution"]
    assert line["logger"] == "gateway.access"
    assert line["level"] == "INFO"
    assert str(line["time"]).endswith("+00:00")
    assert set(line) <= logs.FIELDS
    assert CANARY not in out.getvalue()


def test_allowed_field_with_free_text_becomes_invalid(out: io.StringIO) -> None:
    # A field on the list but fed client text (spaces, quotes, newlines): not logged.
    logs.log_request({"model": f"say {CANARY}\nnow", "team": {"nested": CANARY}})
    (line,) = lines(out)
    assert line["model"] == "invalid"
    assert line["team"] == "invalid"
    assert CANARY not in out.getvalue()


def test_string_arguments_are_never_interpolated(out: io.StringIO) -> None:
    log = logging.getLogger("gateway.test")
    log.warning("upstream said %s", f"body {CANARY}")
    log.info("listening on port %d", 8443)
    log.debug("extra %s", "x", extra={"body": CANARY, "port": 9464})
    first, second, third = lines(out)
    assert first["message"] == "upstream said %s"
    assert second["message"] == "listening on port 8443"
    assert third["port"] == 9464
    assert "body" not in third
    assert CANARY not in out.getvalue()


def test_exceptions_log_only_their_class(out: io.StringIO) -> None:
    log = logging.getLogger("gateway.test")
    try:
        secret = CANARY  # a local in the failing frame
        raise ValueError(f"bad {secret}")
    except ValueError:
        log.exception("boom")
    logs.log_exception(KeyError(CANARY), "req_2")
    first, second = lines(out)
    assert first["error_class"] == "ValueError"
    assert second == {**second, "error_class": "KeyError", "request_id": "req_2"}
    text = out.getvalue()
    assert CANARY not in text
    assert "Traceback" not in text


def test_third_party_preformatted_messages_are_dropped(out: io.StringIO) -> None:
    aio = logging.getLogger("aiohttp.server")
    aio.error(f"Error handling request from {CANARY}")  # pre-formatted: content inside
    aio.error("Error handling request", exc_info=RuntimeError(CANARY))
    aio.warning("Bad request %s", CANARY)  # template kept, argument dropped
    a, b, c = lines(out)
    assert a["message"] == logs.DROPPED
    assert b["message"] == "Error handling request"
    assert b["error_class"] == "RuntimeError"
    assert c["message"] == "Bad request %s"
    assert CANARY not in out.getvalue()


def test_aiohttp_access_log_is_off(out: io.StringIO) -> None:
    logging.getLogger("aiohttp.access").info('%s "%r"', "127.0.0.1", f"POST /{CANARY}")
    assert out.getvalue() == ""


def test_stack_info_and_non_string_messages(out: io.StringIO) -> None:
    log = logging.getLogger("gateway.test")
    log.info("with stack", stack_info=True)
    log.info({"prompt": CANARY})
    log.info(ValueError(CANARY))
    a, b, c = lines(out)
    assert "stack_info" not in a
    assert b["message"] == logs.DROPPED
    assert c["message"] == logs.DROPPED
    assert CANARY not in out.getvalue()


def test_uncaught_exception_hooks(out: io.StringIO) -> None:
    err = OSError(CANARY)
    sys.excepthook(OSError, err, err.__traceback__)
    t = threading.Thread(target=lambda: (_ for _ in ()).throw(LookupError(CANARY)))
    t.start()
    t.join()
    a, b = lines(out)
    assert a["error_class"] == "OSError"
    assert b["error_class"] == "LookupError"
    assert CANARY not in out.getvalue()


async def test_loop_exception_handler(out: io.StringIO) -> None:
    loop = asyncio.get_running_loop()
    logs.loop_exception_handler(
        loop, {"message": f"Task {CANARY}", "exception": TimeoutError(CANARY), "task": CANARY}
    )
    (line,) = [x for x in lines(out) if x["logger"] == "gateway"]
    assert line["error_class"] == "TimeoutError"
    assert CANARY not in out.getvalue()


def test_unraisable_and_warnings(out: io.StringIO) -> None:
    class Args:
        exc_type = MemoryError
        exc_value = MemoryError(CANARY)
        object = CANARY
        err_msg = CANARY

    sys.unraisablehook(Args())  # type: ignore[arg-type]
    logging.getLogger("py.warnings").warning("%s", f"UserWarning: {CANARY}")
    a, b = lines(out)
    assert a["error_class"] == "MemoryError"
    assert b["message"] == "%s"
    assert CANARY not in out.getvalue()
