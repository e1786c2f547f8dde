"""A small pooled HTTP/1.1 client for the forward hot path.

Built on `asyncio.Protocol` and the llhttp response parser (`httptools`), it does
only what forwarding needs and nothing aiohttp's client does on the side (no
cookies, no proxy from the environment, no redirects, no decompression, no
default headers): `Pool.request` writes one request and returns a `Response`
whose body is an async iterator of chunks as they arrive. Failures are the
`ClientError` subclasses in `errors`, each with a bounded `kind` (a metric
label) and a constant message; `TimeoutError` when a deadline passes.

- `request.py`: the request head, refusing what could smuggle a second request.
- `protocol.py`: one connection and the response being read on it.
- `pool.py`: keep-alive connections per origin, the connection limit, timeouts.
"""

from gateway.http1.errors import (
    ClientError,
    ConnectFailed,
    ConnectTimeout,
    ProtocolFailed,
    Reset,
    TLSFailed,
)
from gateway.http1.pool import Pool
from gateway.http1.protocol import Response
from gateway.http1.request import UnsafeRequest

__all__ = [
    "ClientError",
    "ConnectFailed",
    "ConnectTimeout",
    "Pool",
    "ProtocolFailed",
    "Reset",
    "Response",
    "TLSFailed",
    "UnsafeRequest",
]
