"""`server.timeouts`, `server.limits` and `server.shed`: what a hostile or heavy client
may hold of a gateway process, and for how long.

Defaults follow nginx where nginx has the same knob (`keepalive_timeout 75s`,
`client_body_timeout 60s`) and are tighter where an API client never needs the slack:
an SDK sends its request head in one packet, so 20 s for a head is already generous.
docs/limits.md explains each number and the open-files arithmetic.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from gateway.settings_base import Section

MiB = 1024 * 1024


class ClientTimeouts(Section):
    # TLS handshake, from TCP accept to the handshake done (asyncio's default is 60 s).
    handshake: float = Field(default=10.0, gt=0, le=600)
    # The request head (request line and headers), from its first byte to its last.
    head: float = Field(default=20.0, gt=0, le=600)
    # The request body, from the handler's first read to the last byte.
    body: float = Field(default=60.0, gt=0, le=3600)
    # Keep-alive: from a response's end (or the connection's start) to the next request's
    # complete head. Also bounds a connection that never sends anything.
    idle: float = Field(default=75.0, gt=0, le=3600)


class Limits(Section):
    # Open client connections per process (TLS handshakes included). Past it, a new
    # connection is closed as soon as it is accepted, before any TLS work. Keep it
    # below the open-files limit minus upstream connections: see docs/limits.md.
    max_connections: int = Field(default=10_000, ge=1, le=1_000_000)
    # Memory for request bodies held across all in-flight requests of the process: each
    # body's bytes plus an upper estimate of its parsed form (gateway/jsonbody.py). A
    # request that would exceed it gets 529 overloaded_error (SDKs retry those).
    body_memory_bytes: int = Field(default=384 * MiB, ge=MiB, le=64 * 1024 * MiB)
    # JSON nesting depth accepted in a request body (objects and arrays).
    max_json_depth: int = Field(default=128, ge=8, le=512)


class ShedSettings(Section):
    # New requests get 529 while this many are in flight (0: no cap). Streams already
    # running are never cut.
    max_in_flight: int = Field(default=0, ge=0, le=1_000_000)
    # ...or while the event loop runs this late (seconds; 0: off). Lag is sampled
    # every `lag_interval_seconds` by a timer that measures how late it fires.
    max_loop_lag_seconds: float = Field(default=1.0, ge=0, le=60)
    lag_interval_seconds: float = Field(default=0.1, gt=0, le=10)
    # The `retry-after` sent with every 529 (whole seconds).
    retry_after_seconds: int = Field(default=2, ge=1, le=600)
    # /readyz answers 503 after this long of continuous shedding (0: never), so a
    # Service sends new connections to replicas that have room.
    unready_after_seconds: float = Field(default=0.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _interval(self) -> ShedSettings:
        if self.max_loop_lag_seconds and self.lag_interval_seconds > self.max_loop_lag_seconds:
            raise ValueError("lag_interval_seconds must not exceed max_loop_lag_seconds")
        return self
