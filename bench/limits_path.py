"""CPU of auth + rate limiting on the request path, in process (a benchmark, not a test).

    python -m bench.limits_path [N]          # the request path, auth on vs off
    python -m bench.limits_path --parts [N]  # the rate limiter's parts, one at a time

Runs what the gateway runs per JSON request between route and forward, on a real
app built from a config like `python -m bench --auth` (a gateway key scoped to
messages and `claude-*`, limits rpm 10^8, TPM 10^12, concurrency 10^4, rate limiter
in memory): the auth stage, the key's scope check, the rate-limit stage and its
settle callback. Prints µs per request with auth on and with auth off (the
anonymous principal: no rules, the limiter stage returns at once); the
difference is what auth and limits add to a request, without aiohttp's noise.

Times are the process's CPU time (`time.process_time`), not wall time: on a shared
machine a run that is descheduled would otherwise count other processes' work. Each
figure is the best of 7 runs of N.

`--parts` times, in isolation and on the same key's rules, what the stage calls: the
memory backend's acquire + settle, `rate_headers`, the decision counter (`count`) and
the rule-set lookup (`rules`), so a change to one of them can be measured on its own.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry

from bench.__main__ import bench_claims
from gateway.app import build_app
from gateway.auth import tokens
from gateway.auth.keyset import load_private_key, write_key_pair
from gateway.auth.principal import Principal
from gateway.auth.stage import auth_stage
from gateway.config import Config
from gateway.context import RequestContext, Usage
from gateway.observe.metrics import Metrics
from gateway.ratelimit.headers import rate_headers
from gateway.ratelimit.rules import Cost
from gateway.ratelimit.service import build
from gateway.ratelimit.settings import RateLimitSettings
from gateway.ratelimit.stage import ratelimit_stage
from gateway.routing.router import Route
from gateway.stages.scopes import scopes_stage
from gateway.state import ROUTER

T = TypeVar("T")
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
            start = time.process_time()
            for _ in range(n):
                await one(request, route)
            best = min(best, (time.process_time() - start) / n * 1e6)
        return best


async def main(n: int) -> None:
    off = await measure(False, n)
    on = await measure(True, n)
    print(f"auth + scopes + rate limit + settle, best of 7 x {n} requests, in process, CPU")
    print(f"  auth off (no rules)       {off:7.2f} µs/request")
    print(f"  auth on, key with limits  {on:7.2f} µs/request   (+{on - off:.2f} µs)")


def _done(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends (the memory backend's), run inline."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return cast(T, stop.value)
    raise RuntimeError("suspended")


def best_of(fn: Callable[[], object], n: int, repeats: int = 7) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n * 1e6)
    return best


def parts(n: int) -> None:
    claims = bench_claims(int(time.time()), ttl=3600)
    who = Principal(claims.key_id, claims.team, "key", limits=claims.limits)
    rl = build(RateLimitSettings(), Metrics(CollectorRegistry()))
    rules = rl.rules(who, tokens=True)
    cost, used, now = Cost(1, 30, 64), Usage(input_tokens=20, output_tokens=12), time.time()

    def limiter() -> None:
        admission = _done(rl.limiter.acquire(rules, cost, now))
        assert admission.reservation is not None
        _done(rl.limiter.settle(admission.reservation, used, now))

    admission = _done(rl.limiter.acquire(rules, cost, now))
    timed = {
        "memory acquire + settle": limiter,
        "rate_headers (anthropic)": lambda: rate_headers(admission),
        "count (decision counter)": lambda: rl.count(rules, admission),
        "rules (rule-set lookup)": lambda: rl.rules(who, True),
    }
    print(f"rate limiter parts, {len(rules)} rules, best of 25 x {n} calls, CPU")
    for name, fn in timed.items():
        print(f"  {name:26} {best_of(fn, n, 25):6.2f} µs")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--parts"]
    count = int(args[0]) if args else 20000
    if "--parts" in sys.argv[1:]:
        parts(count)
    else:
        asyncio.run(main(count))
