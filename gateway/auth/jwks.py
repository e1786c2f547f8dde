"""JWKS caches shared across reloads, one per external OIDC issuer (gateway/auth/oidc.py).

Kept apart from oidc.py so that a config without OIDC never imports PyJWT or the
JWK key types: the caches themselves are imported only when an issuer needs one.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import aiohttp

from gateway.auth.settings import OIDCIssuer
from gateway.observe.metrics import Metrics

if TYPE_CHECKING:
    from gateway.auth.oidc import JWKSCache


class JWKSRegistry:
    """JWKS caches that outlive reloads (an unchanged issuer keeps its cached keys)."""

    def __init__(self, metrics: Metrics, session: aiohttp.ClientSession | None = None) -> None:
        self.metrics, self.session = metrics, session
        self._caches: dict[str, JWKSCache] = {}

    def cache_for(self, issuer: OIDCIssuer) -> JWKSCache:
        ident = issuer.model_dump_json(include={"name", "jwks_url", "ca_file"})
        cache = self._caches.get(ident)
        if cache is None:
            from gateway.auth.oidc import JWKSCache

            ctx = ssl.create_default_context(cafile=issuer.ca_file) if issuer.ca_file else None
            cache = self._caches[ident] = JWKSCache(issuer, self, self.metrics, ctx)
        cache.settings = issuer  # refresh intervals may have changed
        return cache

    def caches(self) -> list[JWKSCache]:
        return list(self._caches.values())

    async def refresh_due(self) -> None:
        """Refresh every cache whose keys are due, with no token waiting on it: requests
        then rarely wait on the IdP, and recovery after an outage shows (the stale
        gauge clears) even when no token from that issuer arrives."""
        for cache in self.caches():
            if cache.due():
                await cache.refresh()
