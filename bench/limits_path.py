"""CPU of auth + rate limiting on the request path, in process (a benchmark, not a test).

    python -m bench.limits_path [N]

Runs what the gateway runs per JSON request between route and forward, on a real
app built from a config like `python -m bench --auth` (a gateway key scoped to
messages and `claude-*`, limits rpm 10^8, TPM 10^12, concurrency 10^4, rate limiter
in memory): the auth stage, the key's scope check, the rate-limit stage and its
settle callback. Prints µs per request with auth on and with auth off (the
anonymous principal: no rules, the limiter stage returns at once); the
difference is what auth and limits add to a request, without aiohttp's noise.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry

from bench.__main__ import bench_claims
from gateway.app import build_app
from gateway.auth import tokens
from gateway.auth.keyset import load_private_key, write_key_pair
from gateway.auth.stage import auth_stage
from gateway.config import Config
from gateway.context import RequestContext, Usage
from gateway.observe.metrics import Metrics
from gateway.ratelimit.stage import ratelimit_stage
from gateway.routing.router import Route
from gateway.stages.scopes import scopes_stage
from gateway.state import ROUTER

BODY = b'{"model":"claude-sonnet-5-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}'


def config(tmp: Path, auth: bool) -> tuple[Config, str | None]:
    cfg: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "tls": {"enabled": False}},
        "upstreams": [
            {"name": "a", "provider": "anthropic", "url": "http://127.0.0.1:9", "api_key": "x"}
        ],
        "auth": {"enabled": False},
    }
    if not auth:
        return Config.model_validate(cfg), None
    private, public = write_key_pair(tmp, "bench")
    claims = bench_claims(int(time.time()), ttl=3600)
    key = tokens.issue(claims, load_private_key(private), "bench")
    cfg["auth"] = {"signing_keys": [{"kid": "bench", "public_key_file": str(public)}]}
    return Config.model_validate(cfg), key


async def one(request: web.Request, route: Route) -> None:
    ctx = RequestContext(request_id="r")
    ctx.route = route
    await auth_stage(request, ctx)
    ctx.body, ctx.json = BODY, {"model": "claude-sonnet-5-5", "max_tokens": 64, "messages": []}
    ctx.model, ctx.max_tokens, ctx.max_tokens_field = "claude-sonnet-5-5", 64, "max_tokens"
    await scopes_stage(request, ctx)
    await ratelimit_stage(request, ctx)
    ctx.usage = Usage(input_tokens=20, output_tokens=12)
    for done in reversed(ctx.on_end):
        await done()


async def measure(auth: bool, n: int, repeats: int = 7) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg, key = config(Path(tmp), auth)
        app = build_app(cfg, Metrics(CollectorRegistry()))
        headers = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
        if key is not None:
            headers["x-api-key"] = key
        request = make_mocked_request("POST", "/v1/messages", headers=headers, app=app)
        route = app[ROUTER].resolve("POST", "/v1/messages")
        assert isinstance(route, Route)
        for _ in range(n // 10):
            await one(request, route)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(n):
                await one(request, route)
            best = min(best, (time.perf_counter() - start) / n * 1e6)
        return best


async def main(n: int) -> None:
    off = await measure(False, n)
    on = await measure(True, n)
    print(f"auth + scopes + rate limit + settle, best of 7 x {n} requests, in process")
    print(f"  auth off (no rules)       {off:7.2f} µs/request")
    print(f"  auth on, key with limits  {on:7.2f} µs/request   (+{on - off:.2f} µs)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000))
