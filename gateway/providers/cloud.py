"""The per-request hook of a cloud target: sign/translate the request, translate the response.

A cloud adapter (`bedrock.py`, `vertex.py`) sits behind an upstream whose client
API is Anthropic's. Forward (and, per target, a pool) calls, for every attempt:

    exchange = adapter.prepare(Call(...))     # sync: credentials are already in memory
    resp = await client.request(*exchange.request)   # unless `exchange.local` answers it
    resp = await exchange.response(resp)      # a view that translates status, headers, body

`prepare` raises a `GatewayError` for what the cloud does not offer. The view has
the interface forward relays (`UpstreamResponse`); its chunks are translated as
they arrive, one event stream frame at a time, never buffered whole (an error
body, small and capped, is the exception). Credentials are refreshed by the
adapter's own background task (`start`/`close`), off the event loop.

Not importing aiohttp, botocore or google-auth: this is the contract only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.providers.base import UsageReader


class UpstreamResponse(Protocol):
    """What forward relays: gateway.http1.Response, or a cloud adapter's view of one."""

    status: int
    headers: CIMultiDictProxy[str]
    content_type: str
    content_length: int | None
    complete: bool
    buffered: int

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def release(self) -> None: ...


@dataclass(slots=True)
class Call:
    """One client request as the stages left it (policy applied, body parsed)."""

    method: str
    # The client's path with the route prefix removed (the provider's `match` result).
    path: str
    kind: str
    query: list[tuple[str, str]]
    # Allow-listed client headers; the adapter adds the credential.
    headers: CIMultiDict[str]
    body: bytes | bytearray
    json: dict[str, Any] | None
    stream: bool


@dataclass(slots=True)
class Local:
    """An answer the gateway gives itself (a cloud client's probe), nothing forwarded."""

    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass(slots=True)
class Exchange:
    method: str = "POST"
    target: str = "/"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    local: Local | None = None

    async def response(self, resp: UpstreamResponse) -> UpstreamResponse:
        """The client's view of the upstream's answer (default: as it is). It may read a
        small body whole (an error) before the status is decided; a stream is never read."""
        return resp

    def usage_reader(self, default: UsageReader | None) -> UsageReader | None:
        """Reads usage from the bytes the client receives (default: the provider's)."""
        return default


class CloudAdapter(ABC):
    name: str

    @abstractmethod
    def prepare(self, call: Call) -> Exchange:
        """The upstream request for `call`, signed; raises a GatewayError when refused."""

    def path_model(self, path: str) -> tuple[str | None, bool]:
        """(model, stream) a cloud-native client's path names (the body has no `model`)."""
        return None, False

    async def start(self) -> None:  # noqa: B027 (optional hook)
        """Load credentials (off the loop) and start refreshing them ahead of expiry."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Stop background work."""

    def posture(self) -> dict[str, Any]:
        """Provider-side retention facts for /zdr/posture (metadata only)."""
        return {}

    def logging_state(self) -> str:
        """Whether the cloud account logs prompts and completions: on, off, unknown,
        not_checked (see bedrock_logging.py); a cloud without such a setting is off."""
        return "off"


def refused_for_logging(state: str, policy: str, unknown: str) -> bool:
    """`policy.provider_logging` / `provider_logging_unknown` against a target's state."""
    if state == "on":
        return policy == "refuse"
    return state in ("unknown", "not_checked") and unknown == "refuse"


class ResponseView:
    """A translated `UpstreamResponse`: same life cycle as the one it wraps."""

    def __init__(self, resp: UpstreamResponse, status: int, headers: CIMultiDict[str]) -> None:
        self._resp = resp
        self.status = status
        self.headers = CIMultiDictProxy(headers)
        ctype = headers.get("content-type", "")
        self.content_type = ctype.split(";", 1)[0].strip().lower()
        self.content_length: int | None = None
        self.complete = False
        self.buffered = 0

    def release(self) -> None:
        self._resp.release()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.chunks()

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._resp:
            out = self.translate(chunk)
            if out:
                yield out
        tail = self.finish()
        if tail:
            yield tail

    def translate(self, chunk: bytes) -> bytes:
        return chunk

    def finish(self) -> bytes:
        return b""


class WholeBody(ResponseView):
    """A small upstream body (an error, a token count), read whole (capped) and re-shaped:
    `await WholeBody.read(resp)` first, then the new status and body are known."""

    CAP = 64 * 1024

    def __init__(self, resp: UpstreamResponse, status: int, body: bytes) -> None:
        headers = CIMultiDict({"content-type": "application/json"})
        for name in ("retry-after", "retry-after-ms", "x-should-retry"):
            if name in resp.headers:
                headers[name] = resp.headers[name]
        super().__init__(resp, status, headers)
        self._body = body
        self.content_length = len(body)
        self.complete = True
        self.buffered = len(body)

    @staticmethod
    async def read(resp: UpstreamResponse) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in resp:
            if size < WholeBody.CAP:
                parts.append(chunk[: WholeBody.CAP - size])
            size += len(chunk)
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._body:
            yield self._body
