"""Upstreams: one pooled, verified-TLS `ClientSession` per configured model API."""

from __future__ import annotations

import aiohttp
from yarl import URL

from gateway.config import UpstreamSettings
from gateway.metrics import Metrics
from gateway.providers import PROVIDERS, Provider
from gateway.tls import client_context


class Upstream:
    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.provider: Provider = PROVIDERS[settings.provider]
        self.base_url = URL(settings.url)
        self.prefix = settings.prefix
        # SECURITY: built once; the upstream credential exists only in this dict.
        self.credential_headers = self.provider.credential_headers(settings.api_key)
        t = settings.timeouts
        self.timeout = aiohttp.ClientTimeout(
            total=t.total, sock_connect=t.connect, connect=t.connect, sock_read=t.idle
        )
        self.first_byte_timeout = t.first_byte
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("upstream session used before start()")
        return self._session

    async def start(self) -> None:
        ssl_ctx = client_context(self.settings.ca_file) if self.base_url.scheme == "https" else None
        connector = aiohttp.TCPConnector(
            limit=self.settings.max_connections,
            ssl=ssl_ctx if ssl_ctx is not None else False,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self.timeout,
            auto_decompress=False,  # bytes pass through as the upstream sent them
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            trust_env=False,  # SECURITY: no proxy from the environment sees our traffic
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


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
