"""A gateway (plaintext listener) and both stand-in upstreams on an event loop of their
own, in a thread: hypothesis drives plain blocking sockets against it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import yaml
from aiohttp import web

from gateway import config as config_mod
from gateway.demo.stub_anthropic import StubUpstream
from gateway.demo.stub_openai import StubOpenAI
from gateway.observe.metrics import Metrics
from gateway.serve import server

T = TypeVar("T")


@dataclass
class FuzzTarget:
    port: int
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)


async def _site(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, server.bound_port(site)


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-gateway", daemon=True)
    thread.start()
    target = FuzzTarget(0, loop)
    anthropic, openai = StubUpstream(record=False), StubOpenAI()

    async def start() -> tuple[server.Running, list[web.AppRunner]]:
        a_runner, a_port = await _site(anthropic.app)
        o_runner, o_port = await _site(openai.app)
        cfg = {
            "server": {"host": "127.0.0.1", "port": 0, "tls": {"enabled": False},
                       "max_body_bytes": 256 * 1024,
                       "timeouts": {"body": 0.5, "head": 0.5, "idle": 1}},
            "admin": {"host": "127.0.0.1", "port": 0},
            "upstreams": [
                {"name": "anthropic", "provider": "anthropic",
                 "url": f"http://127.0.0.1:{a_port}", "api_key": anthropic.api_key},
                {"name": "openai", "provider": "openai", "prefix": "/openai",
                 "url": f"http://127.0.0.1:{o_port}", "api_key": openai.api_key},
            ],
            "auth": {"enabled": False},
            "audit": {"sink": "none"},
            "logging": {"access_log": False},
        }  # fmt: skip
        config = config_mod.parse(yaml.safe_dump(cfg), source="fuzz.yaml", env={})
        running = await server.start(config, Metrics())
        return running, [a_runner, o_runner]

    running, runners = target.run(start())
    target.port = running.port
    yield target

    async def stop() -> None:
        await running.stop()
        for r in runners:
            await r.cleanup()

    target.run(stop())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()
