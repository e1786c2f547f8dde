"""`zdr-gateway serve --workers N`: SO_REUSEPORT workers sharing limits through Redis."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.conftest import SpawnGateway
from tests.support.eventually import eventually
from tests.support.redis_server import RedisServer

from .test_stage import post
from .test_stage_redis import redis_limits


def children(pid: int) -> list[int]:
    """Worker processes of the supervisor (not multiprocessing's resource tracker)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    out = []
    for child in map(int, text.split()):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:
            out.append(child)
    return out


def test_more_than_one_worker_needs_redis(config_dict: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(config_dict | {"ratelimit": {"backend": "memory"}}))
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(path), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "server.workers > 1 needs `ratelimit.backend: redis`" in out.stderr
    cfg = config_dict | {"ratelimit": {"backend": "memory"}}
    cfg["server"] = cfg["server"] | {"workers": 2, "port": 8443}
    path.write_text(yaml.safe_dump(cfg))
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1
    assert "needs `ratelimit.backend: redis`" in out.stderr


async def requests_total(http: aiohttp.ClientSession, admin_url: str) -> float:
    async with http.get(admin_url + "/metrics") as m:
        text = await m.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("zdr_gateway_requests_total{")
    )


async def counted(http: aiohttp.ClientSession, admin_url: str, n: float) -> bool:
    return await requests_total(http, admin_url) == n


async def ready(http: aiohttp.ClientSession, admin_url: str) -> bool:
    async with http.get(admin_url + "/readyz") as r:
        return r.status == 200


@pytest.mark.slow
async def test_workers_share_the_port_and_the_limits(
    spawn_gateway: SpawnGateway, config_dict: dict[str, Any], own_redis: RedisServer
) -> None:
    cfg = redis_limits(config_dict, own_redis.url, "fail_closed", defaults={"rpm": 50})
    cfg["ratelimit"]["redis_timeout_seconds"] = 5  # a burst queues for pooled connections
    cfg["server"] = cfg["server"] | {"workers": 2}
    gp = await spawn_gateway(cfg)
    workers = children(gp.proc.pid)
    assert len(workers) == 2
    connector = aiohttp.TCPConnector(limit=0, force_close=True)  # new connections: both workers
    async with aiohttp.ClientSession(connector=connector) as http:
        loop = asyncio.get_running_loop()
        started = loop.time()
        responses = await asyncio.gather(*(post(http, gp, stream=True) for _ in range(200)))  # type: ignore[arg-type]
        elapsed = loop.time() - started
        statuses = [r.status for r in responses]
        for r in responses:
            await r.read()
        # /metrics of either worker counts the requests of both (a request is counted
        # just after its response is sent: poll briefly).
        with contextlib.suppress(AssertionError):  # the assertion below says what it was
            await eventually(lambda: counted(http, gp.admin_url, 200), timeout=2, interval=0.05)
        total = await requests_total(http, gp.admin_url)
    admitted = statuses.count(200)
    assert statuses.count(429) == 200 - admitted
    assert 50 <= admitted <= 50 + int(elapsed / 1.2), (admitted, elapsed)
    assert total == 200
    # A worker that dies is replaced; the port keeps answering meanwhile.
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> list[int]:
        now = children(gp.proc.pid)
        return now if victim not in now and len(now) == len(workers) else []

    now = await eventually(replaced, timeout=10, interval=0.1, what="the worker replaced")
    assert victim not in now
    assert len(now) == len(workers)
    async with aiohttp.ClientSession() as http:
        await eventually(lambda: ready(http, gp.admin_url), timeout=5, interval=0.1)
    workers = now
    assert gp.terminate() == 0
    for pid in workers:  # reaped by the supervisor before it exited
        assert not Path(f"/proc/{pid}").exists()


async def test_workers_failing_at_start_stop_the_supervisor(
    config_dict: dict[str, Any], own_redis: RedisServer, tmp_path: Path
) -> None:
    from tests.support.ports import free_port

    cfg = redis_limits(config_dict, own_redis.url, "fail_closed")
    port = free_port()
    cfg["server"] = cfg["server"] | {"workers": 2, "port": port}
    cfg["admin"] = cfg["admin"] | {"port": free_port()}
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # The port is taken by a socket without SO_REUSEPORT: every worker fails to bind.
    # (Unusable TLS files no longer get this far: `serve` names them before any worker.)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--config",
            str(path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert await asyncio.wait_for(proc.wait(), 30) == 1


async def test_workers_do_not_outlive_a_killed_supervisor(
    spawn_gateway: SpawnGateway, config_dict: dict[str, Any], own_redis: RedisServer
) -> None:
    cfg = redis_limits(config_dict, own_redis.url, "fail_closed")
    cfg["server"] = cfg["server"] | {"workers": 2}
    gp = await spawn_gateway(cfg)
    workers = children(gp.proc.pid)
    assert len(workers) == 2
    gp.proc.kill()
    gp.proc.wait()
    await eventually(lambda: not any(map(_running, workers)), interval=0.05, what="no worker")
    alive = [p for p in workers if _running(p)]
    assert not alive


def _running(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_workers_refuse_to_start_without_a_memory_backed_metrics_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.config import parse
    from gateway.serve import workers

    cfg = parse(
        yaml.safe_dump(
            {
                "server": {"port": 8443, "workers": 2, "tls": {"enabled": False}},
                "upstreams": [
                    {"name": "a", "provider": "anthropic", "url": "https://x", "api_key": "k"}
                ],
                "ratelimit": {
                    "backend": "redis",
                    "redis_url": "redis://127.0.0.1:1/0",
                    "failure_mode": "fail_open",
                },
            }
        ),
        env={},
    )
    monkeypatch.setattr(workers, "SHM", str(tmp_path / "missing"))
    monkeypatch.setattr(multiprocessing, "get_context", pytest.fail)  # nothing spawned
    assert workers.supervise(cfg) == 2
    assert "needs a writable" in capsys.readouterr().err


@pytest.mark.slow
async def test_each_worker_writes_its_own_audit_stream(
    spawn_gateway: SpawnGateway, config_dict: dict[str, Any], own_redis: RedisServer, tmp_path: Path
) -> None:
    from tests.support import audit as support

    directory = tmp_path / "audit"
    cfg = redis_limits(config_dict, own_redis.url, "fail_closed")
    cfg["server"] = cfg["server"] | {"workers": 2}
    cfg["audit"] = support.file_sink(directory)
    gp = await spawn_gateway(cfg)
    workers = children(gp.proc.pid)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        for r in await asyncio.gather(*(post(http, gp) for _ in range(40))):  # type: ignore[arg-type]
            assert r.status == 200
            await r.read()
        os.kill(workers[0], signal.SIGKILL)  # its replacement continues the slot's stream
        for _ in range(300):  # the replacement opens a new segment of its slot's stream
            if len(list(directory.iterdir())) == 3:
                break
            await asyncio.sleep(0.1)
        for r in await asyncio.gather(*(post(http, gp) for _ in range(20))):  # type: ignore[arg-type]
            assert r.status == 200
            await r.read()
    assert gp.terminate() == 0
    names = sorted(p.name for p in directory.iterdir())
    assert {n.split(".")[0] for n in names} == {"main-w0", "main-w1"}
    assert len(names) == 3  # the restarted worker opened a second segment of its stream
    result, events = support.read(directory)
    assert result.ok, [str(f) for f in result.findings]
    assert result.streams == 2
    # Every request after the kill is there; before it, at most the dead worker's last turn.
    assert 60 - 40 <= len(events) <= 60
