"""Revocation without restart: the watched file and the Redis set shared by replicas."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from redis.asyncio import Redis

from gateway.auth.revocation import RedisRevocations, Revocations, read_file, revoke
from gateway.observe.metrics import Metrics
from tests.support.eventually import eventually


def poll_errors(metrics: Metrics) -> float:
    sample = metrics.registry.get_sample_value(
        "zdr_gateway_redis_errors_total", {"op": "revocation_poll"}
    )
    return sample or 0.0


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_config_list() -> None:
    r = Revocations(["a", "b"])
    assert "a" in r
    assert "c" not in r


def test_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "revoked.txt"
    path.write_text("# revoked keys\nold-1\n\n")
    clock = Clock()
    r = Revocations([], str(path), clock=clock)
    assert "old-1" in r
    assert "new-1" not in r
    path.write_text("old-1\nnew-1  # leaked in a ticket\n")
    os.utime(path, ns=(1, 1))  # a distinct mtime even on coarse file systems
    assert "new-1" not in r  # checked at most once per second
    clock.t += 1.0
    assert "new-1" in r


def test_broken_file_keeps_the_previous_list(tmp_path: Path) -> None:
    path = tmp_path / "revoked.txt"
    path.write_text("old-1\n")
    clock = Clock()
    r = Revocations([], str(path), clock=clock)
    path.unlink()
    clock.t += 5
    assert "old-1" in r
    path.write_bytes(b"\xff\xfe not utf-8")
    clock.t += 5
    assert "old-1" in r


def test_unreadable_file_at_load_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read revoked key ids"):
        read_file(tmp_path / "missing.txt")


async def test_redis_revocation_reaches_another_replica(redis_url: str) -> None:
    metrics = Metrics()
    admin = Redis.from_url(redis_url)
    replica = Redis.from_url(redis_url)
    try:
        mirror = RedisRevocations(replica, "zdr-gateway:revoked", metrics, interval=0.05)
        r = Revocations([], None, mirror)
        await mirror.poll_once()
        assert "app-1" not in r
        assert await revoke(admin, "zdr-gateway:revoked", "app-1") is True
        assert await revoke(admin, "zdr-gateway:revoked", "app-1") is False
        await mirror.poll_once()
        assert "app-1" in r
        ok = metrics.registry.get_sample_value(
            "zdr_gateway_redis_duration_seconds_count", {"op": "revocation_poll"}
        )
        assert ok == 2
    finally:
        await admin.aclose()
        await replica.aclose()


async def test_redis_down_keeps_the_last_set_and_counts(redis_url: str) -> None:
    import asyncio

    metrics = Metrics()
    client = Redis.from_url(redis_url)
    await client.sadd("zdr-gateway:revoked", "app-1")
    mirror = RedisRevocations(client, "zdr-gateway:revoked", metrics, interval=0.01)
    await mirror.poll_once()
    await client.aclose()
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    mirror._client = dead
    task = asyncio.create_task(mirror.run())
    await eventually(lambda: poll_errors(metrics) >= 1, what="a failed poll")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await dead.aclose()
    assert "app-1" in mirror.ids
    errors = metrics.registry.get_sample_value(
        "zdr_gateway_redis_errors_total", {"op": "revocation_poll"}
    )
    assert errors is not None
    assert errors >= 1


async def test_a_hanging_redis_is_timed_out_and_counted() -> None:
    import asyncio

    held: list[asyncio.StreamWriter] = []

    async def accept_and_hang(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # never answers

    server = await asyncio.start_server(accept_and_hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    metrics = Metrics()
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    mirror = RedisRevocations(client, "k", metrics, interval=0.01, timeout=0.1)
    task = asyncio.create_task(mirror.run())
    await eventually(lambda: poll_errors(metrics) >= 2, what="two timed-out polls")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.aclose()
    for w in held:
        w.close()
    server.close()
    await server.wait_closed()
    errors = metrics.registry.get_sample_value(
        "zdr_gateway_redis_errors_total", {"op": "revocation_poll"}
    )
    assert errors is not None
    assert errors >= 2
