"""Revoked key ids: from config, from a watched file, and from a Redis set shared by replicas.

- `auth.revoked` (config): replaced when the config is reloaded (SIGHUP, file change).
- `auth.revoked_file`: one id per line; its mtime is checked at most once per
  second on the request path, and a changed file is re-read before that request
  is verified, so a revocation takes effect on the next request.
- Redis (`ratelimit.backend: redis`): `RedisRevocations.run` polls the set every
  second, so a `zdr-gateway keys revoke` reaches every replica within about a second.
  SECURITY: when Redis is unreachable the last set read stays in force (fail-static)
  and `zdr_gateway_redis_errors_total{op="revocation_poll"}` counts the failures.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.observe.metrics import Metrics

if TYPE_CHECKING:  # redis-py is imported only when Redis is configured (~7 MiB at idle)
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
MAX_FILE_BYTES = 4 * 1024 * 1024
POLL_SECONDS = 1.0


class RedisRevocations:
    """The Redis set, mirrored in memory by a poller (lookups never wait on Redis)."""

    def __init__(
        self,
        client: Redis,
        key: str,
        metrics: Metrics | None = None,
        interval: float = POLL_SECONDS,
        timeout: float = 2.0,
    ) -> None:
        self._client, self._key, self._metrics, self._interval = client, key, metrics, interval
        self._timeout = timeout
        self.ids: frozenset[str] = frozenset()

    async def poll_once(self) -> None:
        started = time.perf_counter()
        members = await self._client.smembers(self._key)
        self.ids = frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        if self._metrics is not None:
            self._metrics.redis_duration.labels("revocation_poll").observe(
                time.perf_counter() - started
            )

    async def run(self) -> None:
        from redis.exceptions import RedisError

        while True:
            try:
                # A Redis that hangs must not freeze the mirror silently.
                async with asyncio.timeout(self._timeout):
                    await self.poll_once()
            except (RedisError, OSError, TimeoutError):
                if self._metrics is not None:
                    self._metrics.redis_errors.labels("revocation_poll").inc()
            await asyncio.sleep(self._interval)


async def revoke(client: Redis, key: str, key_id: str) -> bool:
    """Adds `key_id` to the shared set; False when it was already there."""
    return bool(await client.sadd(key, key_id))


class Revocations:
    """`key_id in revocations`: config list, watched file, Redis mirror."""

    def __init__(
        self,
        static: Iterable[str],
        file: str | None = None,
        remote: RedisRevocations | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._static = frozenset(static)
        self._file, self._remote, self._clock = file, remote, clock
        self._file_ids: frozenset[str] = frozenset()
        self._file_stamp: tuple[int, int] | None = None
        self._checked = float("-inf")
        if file is not None:
            self._file_ids = read_file(file)  # at load: a broken file is a config error
            self._file_stamp = file_stamp(file)
            self._checked = clock()

    def __contains__(self, key_id: object) -> bool:
        if self._file is not None:
            self._maybe_reread()
        return (
            key_id in self._static
            or key_id in self._file_ids
            or (self._remote is not None and key_id in self._remote.ids)
        )

    def _maybe_reread(self) -> None:
        assert self._file is not None
        now = self._clock()
        if now - self._checked < POLL_SECONDS:
            return
        self._checked = now
        stamp = file_stamp(self._file)
        if stamp == self._file_stamp:
            return
        try:
            self._file_ids = read_file(self._file)
            self._file_stamp = stamp
        except ValueError as exc:
            # SECURITY: keep the previous list rather than forgetting every revocation.
            log.error(
                "revoked_file not re-read, previous list kept",
                extra={"config_source": str(self._file), "config_problem": str(exc)},
            )


def read_file(path: str | os.PathLike[str]) -> frozenset[str]:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read revoked key ids ({type(exc).__name__})") from None
    ids = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(i for i in ids if i)


def file_stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
