"""The provider interface: endpoints, headers both ways, error shape, usage from the stream."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.context import Usage

# RFC 9110 §7.6.1 hop-by-hop fields; never forwarded in either direction.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# SECURITY: never forwarded whatever a prefix allows; the upstream's own credential is
# added by the forward stage.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "proxy-authorization", "cookie", "anthropic-api-key"}
)
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


@dataclass(frozen=True, slots=True)
class Endpoint:
    # Bounded endpoint kind: a metric label, an audit field and a scope name.
    kind: str
    method: str
    zdr_eligible: bool
    json_body: bool


class UsageReader(ABC):
    """Reads token usage from response bytes as they pass, never keeping content."""

    usage: Usage
    # Provider error type seen inside a 200 response (e.g. SSE `event: error`), bounded.
    stream_error: str | None

    @abstractmethod
    def feed(self, chunk: bytes) -> None: ...

    @abstractmethod
    def finish(self) -> None: ...


class Provider(ABC):
    name: str
    # Client request headers passed upstream (lower-case); everything else is dropped.
    request_headers: frozenset[str]
    # Upstream response headers passed back to the client (lower-case).
    response_headers: frozenset[str]
    # Query parameters passed upstream; any other (credentials included) is dropped.
    query_params: frozenset[str]
    # Request header name prefixes passed upstream too (e.g. the provider's own `anthropic-`
    # family, which grows with each client release), never a credential header.
    request_header_prefixes: tuple[str, ...] = ()

    @abstractmethod
    def match(self, method: str, path: str) -> tuple[Endpoint, str] | None:
        """(endpoint, upstream path) for a client path with the route prefix removed."""

    # Body fields that cap output tokens, per endpoint kind, the preferred one first.
    output_cap_fields: dict[str, tuple[str, ...]] = {}
    # The error types its usage reader reports for an in-stream error (a bounded label).
    stream_error_types: frozenset[str] = frozenset()

    @abstractmethod
    def credential_headers(self, api_key: str) -> dict[str, str]: ...

    @abstractmethod
    def error_body(self, err_type: str, message: str, request_id: str) -> bytes: ...

    @abstractmethod
    def usage_reader(self, event_stream: bool) -> UsageReader: ...

    @abstractmethod
    def upstream_request_id(self, headers: CIMultiDictProxy[str]) -> str | None: ...

    def forward_request_headers(
        self, headers: Iterable[tuple[str, str]], connection: str | None
    ) -> CIMultiDict[str]:
        allowed = self.request_headers
        hop: frozenset[str] = frozenset()
        if connection:
            # RFC 9110 §7.6.1: names listed in Connection are hop-by-hop for this message.
            hop = frozenset(t.strip().lower() for t in connection.split(","))
            allowed = allowed - hop
        prefixes = self.request_header_prefixes
        out: CIMultiDict[str] = CIMultiDict()
        for name, value in headers:
            lower = name.lower()
            if lower in allowed or (
                prefixes
                and lower.startswith(prefixes)
                and lower not in CREDENTIAL_HEADERS
                and lower not in hop
            ):
                out.add(name, value)
        return out

    def forward_response_headers(
        self, headers: CIMultiDictProxy[str], own_ratelimit: bool = False
    ) -> CIMultiDict[str]:
        """`own_ratelimit`: the gateway sends its own per-key rate-limit headers, so the
        provider's (which describe the whole organisation) must not reach the client."""
        out: CIMultiDict[str] = CIMultiDict()
        allowed = self.response_headers
        for name, value in headers.items():
            lower = name.lower()
            if lower in allowed or (not own_ratelimit and self._is_passthrough(lower)):
                out.add(name, value)
        return out

    def _is_passthrough(self, lower_name: str) -> bool:
        return False


def count(value: Any) -> int:
    """A token count from a provider's JSON: a non-negative int, anything else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def valid_model_id(value: str) -> bool:
    return bool(_MODEL_ID.match(value))


def json_error(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class JSONUsage(UsageReader):
    """Usage from a non-streamed JSON response: keeps at most one response (capped)."""

    def __init__(self, apply: Callable[[Usage, Any], None], cap: int = 64 << 20) -> None:
        self.usage = Usage()
        self.stream_error = None
        self._apply = apply
        self._parts: list[bytes] = []
        self._size = 0
        self._cap = cap

    def feed(self, chunk: bytes) -> None:
        if self._size <= self._cap:
            self._parts.append(chunk)
            self._size += len(chunk)

    def finish(self) -> None:
        parts, self._parts = self._parts, []
        if self._size > self._cap or not parts:
            return
        try:
            payload = orjson.loads(b"".join(parts))
        except ValueError:
            return
        if isinstance(payload, dict):
            self._apply(self.usage, payload.get("usage"))
