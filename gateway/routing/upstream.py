"""Upstreams: one pooled, verified-TLS HTTP/1.1 client (`gateway.http1.Pool`) per model API."""

from __future__ import annotations

from gateway.config import UpstreamSettings
from gateway.http1 import Pool
from gateway.observe.metrics import Metrics
from gateway.providers import PROVIDERS, Provider
from gateway.serve.tls import client_context


class Upstream:
    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.provider: Provider = PROVIDERS[settings.provider]
        self.prefix = settings.prefix
        # SECURITY: built once; the upstream credential exists only in this dict.
        self.credential_headers = self.provider.credential_headers(settings.api_key)
        self._client: Pool | None = None

    @property
    def client(self) -> Pool:
        if self._client is None:
            raise RuntimeError("upstream client used before start()")
        return self._client

    async def start(self) -> None:
        url = self.settings.url
        t = self.settings.timeouts
        self._client = Pool(
            url,
            tls=client_context(self.settings.ca_file) if url.startswith("https:") else None,
            limit=self.settings.max_connections,
            connect_timeout=t.connect,
            first_byte_timeout=t.first_byte,
            total_timeout=t.total,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class UpstreamPool:
    def __init__(self, settings: list[UpstreamSettings], metrics: Metrics) -> None:
        self.metrics = metrics
        self.upstreams = [Upstream(s) for s in settings]

    async def start(self) -> None:
        for u in self.upstreams:
            await u.start()

    async def close(self) -> None:
        for u in self.upstreams:
            await u.close()
