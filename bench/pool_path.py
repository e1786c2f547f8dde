"""What a pool adds to the forward stage, in process (a benchmark, not a test).

    python -m bench.pool_path [N]

1. CPU: the forward stage's attempt code (`stages.attempts.send`: restriction,
   target choice, breaker and budget bookkeeping, the adapter's headers, the
   attempts metric) for a single-url upstream and for a pool of three healthy
   targets, against clients that answer at once, so only the pool's own work
   is timed. Best of 7 x N. The difference, over the gateway's whole CPU per
   request (`python -m bench.pool`, or `python -m bench`'s "JSON CPU per
   request"), is the share a pool adds.
2. Failover time: real sockets on loopback. `send` + reading the answer of a
   stand-in (`gateway.stub`, in this process), single-url versus a pool whose
   first-priority target refuses connections (every request fails over),
   alternating, medians of N/10 each; beside it one TCP connect to the stub from
   the same loop, median of 200. Target: failed over adds at most one connect.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import CollectorRegistry

from bench.proc import free_port
from gateway.config import UpstreamSettings
from gateway.context import RequestContext
from gateway.demo.stub_anthropic import STUB_API_KEY, StubUpstream
from gateway.observe.metrics import Metrics
from gateway.routing.upstream import Upstream
from gateway.stages import attempts

BODY = b'{"model":"claude-sonnet-5-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}


class _Answer:
    status = 200
    headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())

    def release(self) -> None:
        return None


class _Instant:
    """A client that answers every request at once (the pool's own cost, nothing else)."""

    answer = _Answer()

    async def request(self, *args: Any) -> _Answer:
        for _ in args[2]:  # the headers are produced, as the real client encodes them
            pass
        return self.answer


def upstream(
    targets: list[dict[str, Any]] | None, url: str = "http://127.0.0.1:9", **extra: Any
) -> Upstream:
    form: dict[str, Any] = (
        {"targets": targets} if targets else {"url": url, "api_key": STUB_API_KEY}
    )
    settings = UpstreamSettings.model_validate(
        {"name": "anthropic", "provider": "anthropic", **form, **extra}
    )
    return Upstream(settings, Metrics(CollectorRegistry()))


def target(name: str, url: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "url": url, "api_key": STUB_API_KEY, **kw}


async def cpu(ups: list[Upstream], metrics: Metrics, n: int) -> list[float]:
    """Best µs per request of each upstream, measured in alternating rounds."""
    for up in ups:
        for t in up.targets:
            t._client = _Instant()  # type: ignore[assignment]
    request = ("POST", "/v1/messages", CIMultiDict(HEADERS), BODY)
    ctx = RequestContext("bench")
    best = [float("inf")] * len(ups)
    for _ in range(7):
        for i, up in enumerate(ups):
            start = time.perf_counter()
            for _ in range(n):
                resp, _ = await attempts.send(up, metrics, (), request, ctx)
                resp.release()
            best[i] = min(best[i], (time.perf_counter() - start) / n * 1e6)
    return best


async def before(n: int) -> float:
    """The forward stage's upstream call before pools: the credential put in the
    headers, one client call. Best of 7 x N, for the cost a single url pays now."""
    client, headers, credential = _Instant(), CIMultiDict(HEADERS), {"x-api-key": STUB_API_KEY}
    best = float("inf")
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(n):
            headers.update(credential)
            resp = await client.request("POST", "/v1/messages", headers.items(), BODY)
            resp.release()
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


async def one(up: Upstream, metrics: Metrics) -> float:
    request = ("POST", "/v1/messages", CIMultiDict(HEADERS), BODY)
    ctx = RequestContext("bench")
    start = time.perf_counter()
    resp, _ = await attempts.send(up, metrics, (), request, ctx)
    async for _ in resp:
        pass
    resp.release()
    return time.perf_counter() - start


async def connect_time(port: int) -> float:
    times = []
    for _ in range(200):
        start = time.perf_counter()
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        times.append(time.perf_counter() - start)
        writer.close()
        await writer.wait_closed()
    return statistics.median(times)


async def main(n: int) -> None:
    metrics = Metrics(CollectorRegistry())
    three = [target(f"t{i}", "http://127.0.0.1:9") for i in range(3)]
    single, pool3 = await cpu([upstream(None), upstream(three)], metrics, n)
    old = await before(n)
    print(f"attempt code per request (stages.attempts.send), best of 7 x {n}, in process")
    print(f"  before pools        {old:6.2f} µs   (credential header + one client call)")
    print(f"  single url          {single:6.2f} µs   (+{single - old:.2f} µs over before)")
    print(f"  pool of 3 targets   {pool3:6.2f} µs   (+{pool3 - single:.2f} µs per request)")

    runner = web.AppRunner(StubUpstream(record=False).app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    direct = upstream(None, url)
    # Every request fails over: no breaker to shed the dead target, a budget never spent.
    failover = upstream(
        [target("dead", f"http://127.0.0.1:{free_port()}"), target("live", url, priority=1)],
        breaker={"enabled": False},
        retry_budget={"min_retries": 10000},
    )
    for up in (direct, failover):
        await up.start()
    times: dict[str, list[float]] = {"direct": [], "failover": []}
    try:
        for _ in range(max(50, n // 10)):
            times["direct"].append(await one(direct, metrics))
            times["failover"].append(await one(failover, metrics))
        connect = await connect_time(port)
    finally:
        for up in (direct, failover):
            await up.close()
        await runner.cleanup()
    d, f = (statistics.median(times[k]) * 1e3 for k in ("direct", "failover"))
    print(f"request to the stand-in and its answer, median of {len(times['direct'])}, in process")
    print(f"  single url          {d:.3f} ms")
    print(f"  failed over         {f:.3f} ms   (+{f - d:.3f} ms)")
    print(f"  one TCP connect     {connect * 1e3:.3f} ms   (target: added <= one connect)")
    assert failover.targets[1].breaker.state == "closed"


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000))
