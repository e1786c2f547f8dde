"""One target of an upstream's pool: its own client, credential, breaker and adapter.

The adapter hook
----------------
Every target has its own `Adapter`, not one per upstream, because targets of
one pool may speak differently: an Anthropic workspace key here, a signed
AWS Bedrock or Google Vertex endpoint there (issue 16). The forward stage
calls, for each attempt, on the target it chose:

    method, path, headers, body = target.adapter.outbound(method, path, headers, body)

- `headers` is the request's forward headers (the provider's allow-list of the
  client's, already without any client credential). The adapter must not
  mutate it: a retry on another target starts again from the same headers.
  It returns the headers to send, as (name, value) pairs, credential included.
- `body` is the bytes to send (None for no body); an adapter that translates
  (Bedrock's `anthropic_version` in the body, model in the path) returns new bytes.
- `outbound` runs on the event loop for every attempt: it must not block.
  Credentials that need I/O to refresh (cloud tokens) are refreshed by the
  adapter's own task, started in `start()` and stopped in `close()`.
- SECURITY: the credential lives in the adapter only; it is never logged,
  never in an error, never in a metric (the target's `name` is the only label).

`Direct` is the adapter of a provider's own API: the provider adapter's
credential header (`providers.<name>.credential_headers`) added to the request.
A later response hook (Bedrock's event stream back to SSE) belongs here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

from multidict import CIMultiDict

from gateway.http1 import Pool
from gateway.providers import Provider
from gateway.routing.breaker import Breaker
from gateway.routing.settings import BreakerSettings, TargetSettings
from gateway.serve.tls import client_context

Outbound = tuple[str, str, Iterable[tuple[str, str]], bytes | bytearray | None]
# An attempt's outcome: the `outcome` label of zdr_gateway_upstream_attempts_total.
OUTCOMES = (
    "success", "client_error", "server_error", "retryable_status",
    "connect", "tls", "timeout", "reset", "protocol",
)  # fmt: skip


class Adapter:
    """How requests are made for one target. See the module docstring."""

    def outbound(
        self, method: str, path: str, headers: CIMultiDict[str], body: bytes | bytearray | None
    ) -> Outbound:
        raise NotImplementedError

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class Direct(Adapter):
    """The provider's own API: its credential header, the request unchanged."""

    __slots__ = ("_credential",)

    def __init__(self, provider: Provider, api_key: str) -> None:
        # SECURITY: built once; the target's credential exists only in this tuple.
        self._credential = tuple(provider.credential_headers(api_key).items())

    def outbound(
        self, method: str, path: str, headers: CIMultiDict[str], body: bytes | bytearray | None
    ) -> Outbound:
        return method, path, chain(headers.items(), self._credential), body


class Target:
    __slots__ = (
        "_client",
        "adapter",
        "breaker",
        "labels",
        "name",
        "outcomes",
        "priority",
        "settings",
    )

    def __init__(
        self,
        settings: TargetSettings,
        provider: Provider,
        breaker: BreakerSettings,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.priority = settings.priority
        self.labels = dict(settings.labels)
        self.breaker = Breaker(breaker, on_state)
        self.adapter: Adapter = Direct(provider, settings.api_key)
        # Outcome -> its attempts counter (set by the upstream, which owns the metrics).
        self.outcomes: dict[str, Any] = {}
        self._client: Pool | None = None

    @property
    def weight(self) -> int:
        return self.settings.weight

    @property
    def client(self) -> Pool:
        if self._client is None:
            raise RuntimeError("target client used before start()")
        return self._client

    def open_client(self, *, limit: int, connect: float, first_byte: float, total: float) -> None:
        url = self.settings.url
        self._client = Pool(
            url,
            tls=client_context(self.settings.ca_file) if url.startswith("https:") else None,
            limit=limit,
            connect_timeout=connect,
            first_byte_timeout=first_byte,
            total_timeout=total,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        await self.adapter.close()

    def __repr__(self) -> str:
        # SECURITY: a target in a traceback or log shows its name only (no URL, no key).
        return f"<Target {self.name}>"
