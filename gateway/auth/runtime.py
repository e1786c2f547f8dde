"""The auth state of a running gateway: the current `Authenticator` and what outlives reloads.

`reload(path)` is the hook for SIGHUP and config-file changes: it loads and
validates the whole file, builds a complete new `Authenticator` and swaps it in
with one assignment. Any problem keeps the running one and is returned (and
logged) with the path in the file that caused it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp

from gateway.auth.authenticator import Authenticator, build
from gateway.auth.jwks import JWKSRegistry
from gateway.auth.keyset import KeyLoadError
from gateway.auth.revocation import RedisRevocations, file_stamp
from gateway.config import Config, ConfigError, load
from gateway.observe.metrics import Metrics

if TYPE_CHECKING:  # redis-py is imported only when Redis is configured (~7 MiB at idle)
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
WATCH_SECONDS = 1.0
# How often JWKS caches are checked for a due refresh (each refreshes at its own interval).
JWKS_TICK_SECONDS = 1.0


class AuthRuntime:
    def __init__(self, config: Config, metrics: Metrics, config_path: str | None = None) -> None:
        self.metrics = metrics
        self.config_path = config_path
        self.jwks = JWKSRegistry(metrics)
        self.remote: RedisRevocations | None = None
        self._redis: Redis | None = None
        rl = config.ratelimit
        if rl.backend == "redis" and rl.redis_url:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(rl.redis_url)
            self.remote = RedisRevocations(self._redis, config.auth.revoked_redis_key, metrics)
        # Raises at startup (not at request time) when a key file is missing or wrong.
        self.current: Authenticator = build(config.auth, self.jwks, self.remote)

    def reload(self, path: str | os.PathLike[str] | None = None) -> list[str]:
        """Swap in the auth config from `path` (default: the file served). [] = applied."""
        source = path if path is not None else self.config_path
        if source is None:
            return ["no config file to reload from"]
        try:
            config = load(source)
            if config.auth.enabled != self.current.settings.enabled:
                # SECURITY: switching authentication off (or on) is a restart, never a signal.
                raise ValueError("auth.enabled: changing it needs a restart")
            fresh = build(config.auth, self.jwks, self.remote)
        except ConfigError as exc:
            problems = [f"{p or '(top level)'}: {m}" for p, m in exc.problems]
        except (KeyLoadError, ValueError) as exc:
            problems = [str(exc)]
        else:
            self.current = fresh
            log.info("auth config reloaded", extra={"config_source": str(source)})
            return []
        for problem in problems:
            log.error(
                "auth config NOT reloaded, previous config kept",
                extra={"config_source": str(source), "config_problem": problem},
            )
        return problems

    async def run(self) -> AsyncIterator[None]:
        """Network resources and background tasks for the life of the app."""
        tasks: list[asyncio.Task[None]] = []
        async with aiohttp.ClientSession() as session:
            self.jwks.session = session
            if self.remote is not None:
                from redis.exceptions import RedisError

                # Revocations in force before the first request (Redis down: the poller retries).
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    async with asyncio.timeout(2.0):
                        await self.remote.poll_once()
                tasks.append(asyncio.create_task(self.remote.run()))
            if self.config_path is not None:
                stamp = file_stamp(self.config_path)  # now: a change from here on is a change
                tasks.append(asyncio.create_task(self._watch(self.config_path, stamp)))
            for cache in self.jwks.caches():
                await cache.refresh()  # warm: failures are counted, requests retry later
            tasks.append(asyncio.create_task(self._refresh_jwks()))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self.jwks.session = None
                if self._redis is not None:
                    await self._redis.aclose()

    async def _refresh_jwks(self) -> None:
        while True:
            await asyncio.sleep(JWKS_TICK_SECONDS)
            await self.jwks.refresh_due()

    async def _watch(self, path: str, stamp: tuple[int, int] | None) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            now = file_stamp(path)
            if now != stamp and now is not None:
                stamp = now
                # In the loop, like SIGHUP: one writer of `current`, and the file is small.
                self.reload(path)
