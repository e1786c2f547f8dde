"""Route: client path → upstream, endpoint kind and upstream path."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.providers import Endpoint, Provider
from gateway.routing.upstream import Upstream


@dataclass(frozen=True, slots=True)
class Route:
    upstream: Upstream
    endpoint: Endpoint
    upstream_path: str

    @property
    def provider(self) -> Provider:
        return self.upstream.provider

    @property
    def zdr_eligible(self) -> bool:
        return self.endpoint.zdr_eligible


class Router:
    def __init__(self, upstreams: list[Upstream]) -> None:
        # Longest prefix first, so `/openai/v1/...` is not taken by a "" prefix.
        self._upstreams = sorted(upstreams, key=lambda u: len(u.prefix), reverse=True)

    def upstream_for(self, path: str) -> Upstream:
        """The upstream whose prefix owns this path (used for the error shape of a 404)."""
        for u in self._upstreams:
            if _under(path, u.prefix):
                return u
        return self._upstreams[-1]

    def resolve(self, method: str, path: str) -> Route | Endpoint | None:
        """A Route; the Endpoint alone when only the method is wrong; None when unknown."""
        for u in self._upstreams:
            if not _under(path, u.prefix):
                continue
            hit = u.provider.match(method, path[len(u.prefix) :])
            if hit is None:
                continue
            endpoint, upstream_path = hit
            if endpoint.method != method:
                return endpoint
            return Route(u, endpoint, upstream_path)
        return None


def _under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + "/")
