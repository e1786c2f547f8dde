"""Fixtures of the rate-limit tests: a real redis-server, and a limiter per backend."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.observe.metrics import Metrics
from gateway.ratelimit.base import Limiter
from gateway.ratelimit.memory import MemoryLimiter
from gateway.ratelimit.redis_backend import RedisLimiter
from gateway.ratelimit.settings import RateLimitSettings
from tests.support.redis_server import RedisServer

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone (it may be killed and restarted)."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


class Env:
    """Builds settings and a limiter of one backend; each test gets its own key prefix."""

    def __init__(self, backend: str, url: str | None, metrics: Metrics) -> None:
        self.backend = backend
        self.url = url
        self.metrics = metrics
        self.prefix = f"t{next(_prefixes)}"
        self.opened: list[Limiter] = []

    def settings(self, **overrides: Any) -> RateLimitSettings:
        base: dict[str, Any] = {"backend": self.backend, "redis_key_prefix": self.prefix}
        if self.backend == "redis":
            base |= {"redis_url": self.url, "failure_mode": "fail_closed"}
        return RateLimitSettings.model_validate(base | overrides)

    async def limiter(self, settings: RateLimitSettings | None = None) -> Limiter:
        settings = settings or self.settings()
        limiter: Limiter
        if self.backend == "redis":
            limiter = RedisLimiter(settings, self.metrics)
        else:
            limiter = MemoryLimiter(settings.concurrency_lease_seconds)
        await limiter.start()
        self.opened.append(limiter)
        return limiter


@pytest.fixture(params=["memory", "redis"])
async def env(request: pytest.FixtureRequest, metrics: Metrics) -> AsyncIterator[Env]:
    url = None
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
    e = Env(request.param, url, metrics)
    yield e
    for limiter in e.opened:
        await limiter.close()


@pytest.fixture
def clock() -> Callable[[], float]:
    return lambda: 1_800_000_000.0
