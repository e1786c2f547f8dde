"""Client failures: a bounded `kind` for metrics and a constant message.

SECURITY: messages are fixed strings. Nothing from the request, the response or
the peer (header values, body bytes, parser excerpts) is ever put in one, and
lower-level exceptions are not chained, so a traceback cannot carry them either.
"""

from __future__ import annotations


class ClientError(Exception):
    kind = "protocol"


class ConnectFailed(ClientError):
    """Refused, unreachable or unresolvable; or the pool is closed."""

    kind = "connect"


class TLSFailed(ClientError):
    """The TLS handshake failed, e.g. a certificate that does not verify."""

    kind = "tls"


class ProtocolFailed(ClientError):
    """A response that is not valid HTTP/1.1 (status line, headers, framing)."""

    kind = "protocol"


class Reset(ClientError):
    """The connection ended before the response did."""

    kind = "reset"


class ConnectTimeout(TimeoutError):
    """No connection within `connect_timeout`: nothing was sent (safe to try elsewhere)."""
