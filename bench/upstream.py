"""`python -m bench.upstream PORT MODE`: gateway.demo.stub_anthropic in its own process, plain HTTP.

MODE: `fast` (the stub's default reply, as fast as it goes), `paced` (PACED_EVENTS
text deltas, PACE seconds apart) or `big` (BIG_DELTA-byte deltas, for the 1 GiB stream).
Runs on uvloop like the gateway, so "direct" is the same server stack without the proxy.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from aiohttp import web

from gateway.demo import stub_anthropic as stub_module
from gateway.demo.stub_anthropic import StubUpstream

PACE = 0.02
PACED_EVENTS = 10
BIG_DELTA = 32 * 1024


_plain_sse = stub_module._sse


def _stamped(event: str, data: dict[str, Any]) -> bytes:
    """The stub's event plus an SSE comment line (every SSE parser skips it) holding the
    send time on CLOCK_MONOTONIC, which all processes on a machine share: the client can
    then measure each event's one-way delay, direct or through the gateway."""
    return _plain_sse(event, data)[:-1] + f": sent={time.monotonic():.6f}\n\n".encode()


def main(argv: list[str]) -> None:
    port, mode = int(argv[0]), argv[1]
    stub = StubUpstream(record=False)
    b = stub.behaviour
    if mode == "paced":
        b.reply = " ".join(f"word{i}" for i in range(PACED_EVENTS))
        b.event_delay = PACE
        stub_module._sse = _stamped
    elif mode == "big":
        b.delta_bytes = BIG_DELTA
    elif mode != "fast":
        raise SystemExit(f"unknown mode {mode!r}")
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a Linux dependency of the gateway
        loop = None
    web.run_app(
        stub.app,
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
        handler_cancellation=True,
        loop=loop,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
