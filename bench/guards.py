"""CPU of the hostile-client guards on the request path, in process (a benchmark, not a test).

    python -m bench.guards [N]

The whole-path bench (`python -m bench`) cannot resolve a few µs in 0.2 ms: its CPU per
request moves ±5 % between runs of one tree. This times, on a real app built from a
plaintext config with the defaults, what the guards (issue 15) add per JSON request:

- the router: the chain's route found for `POST /v1/messages` by the gateway's router
  (which also sends what aiohttp matches to nothing into the chain) and by aiohttp's
  `UrlDispatcher.resolve` on the same routes;
- admission and the body budget: `Shedder.admit`, the in-flight count, the body's
  reservation at its parsed cost (`held_cost`, `BodyBudget.reserve`, the gauge) and its
  release; the JSON depth check beside the `json.loads` it follows;
- the body checks on a Claude Code sized body (160 KiB): the held-cost estimate, which
  also counts the containers the depth check needs, beside `json.loads` of it;
- the connection's head deadline: `GuardedHandler.data_received` against aiohttp's
  handler on the same one-packet request.

Times are CPU time (`time.process_time`), best of 7 runs of N, in µs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry

from bench import limits_path
from bench.limits_path import BODY, config
from gateway import jsonbody
from gateway.app import build_app
from gateway.context import RequestContext
from gateway.observe.metrics import Metrics
from gateway.serve import quiet
from gateway.serve.connections import ConnectionGate
from gateway.serve.settings import ClientTimeouts
from gateway.stages.body import _hold
from gateway.state import LOAD


def best_of(fn: Callable[[], object], n: int) -> float:
    """limits_path's best of 7, after a warm-up of n / 10."""
    for _ in range(n // 10):
        fn()
    return limits_path.best_of(fn, n)


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("suspended")


def router(app: web.Application, n: int) -> tuple[float, float]:
    request = make_mocked_request("POST", "/v1/messages", app=app)
    ours = best_of(lambda: _run(app.router.resolve(request)), n)
    # aiohttp's own algorithm on the same routes (what resolved every request before).
    theirs = best_of(lambda: _run(web.UrlDispatcher.resolve(app.router, request)), n)
    return ours, theirs


def budget(app: web.Application, n: int) -> float:
    load = app[LOAD]
    shedder = load.shedder

    def one() -> None:
        ctx = RequestContext(request_id="r")
        if shedder.admit() is None:
            shedder.in_flight += 1
        _hold(ctx, load, jsonbody.held_cost(BODY)[0])
        shedder.in_flight -= 1
        load.release(ctx.held_bytes)

    return best_of(one, n)


def depth(n: int) -> tuple[float, float]:
    parse = best_of(lambda: jsonbody.parse(BODY, 128), n)
    loads = best_of(lambda: json.loads(BODY), n)
    return parse, loads


def body_checks(n: int) -> tuple[float, float, int]:
    """A Claude Code sized body (its system prompt and history: prose, code, many \\n):
    the reservation's estimate and the depth check, beside json.loads of it."""
    from bench.pii import prompt

    text = prompt(80 * 1024)
    doc = {"model": "m", "max_tokens": 8, "system": text,
           "messages": [{"role": "user", "content": text}]}  # fmt: skip
    big = json.dumps(doc).encode()

    estimate = best_of(lambda: jsonbody.held_cost(big), n)
    loads = best_of(lambda: json.loads(big), n)
    return estimate, loads, len(big)


async def head(app: web.Application, n: int) -> tuple[float, float]:
    runner = quiet.runner(app)
    await runner.setup()
    server = runner.server
    assert isinstance(server, web.Server)
    timeouts = ClientTimeouts()
    gate = ConnectionGate(server, None, timeouts, 10, Metrics(CollectorRegistry()))
    request = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-length: 2\r\n\r\n{}"

    def fed(handler: Any) -> Callable[[], None]:
        def one() -> None:
            handler.data_received(request)
            handler._messages.clear()  # as if the request were handled

        return one

    guarded: Any = gate()
    plain = web.RequestHandler(server, loop=asyncio.get_running_loop())
    for handler in (guarded, plain):
        handler._force_close = False  # not connected: feed the parser only
    ours = best_of(fed(guarded), n)
    theirs = best_of(fed(plain), n)
    await runner.cleanup()
    return ours, theirs


async def main(n: int) -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        cfg, _ = config(Path(tmp), auth=False)
    app = build_app(cfg, Metrics(CollectorRegistry()))
    ours, theirs = router(app, n)
    print(f"hostile-client guards, in process, CPU, best of 7 x {n}, µs per request")
    print(f"  router, the chain's route       {ours:6.2f}   (aiohttp's router: {theirs:.2f})")
    held = budget(app, n)
    print(f"  admission + body budget         {held:6.2f}")
    parse, loads = depth(n)
    print(f"  json.loads + depth check        {parse:6.2f}   (json.loads alone: {loads:.2f})")
    estimate, big_loads, size = body_checks(max(1, n // 100))
    kib = size // 1024
    print(f"  a {kib} KiB body: estimate     {estimate:6.1f}   (json.loads of it: {big_loads:.1f})")
    guarded, plain = await head(app, n)
    print(f"  head deadline, data_received    {guarded:6.2f}   (aiohttp's handler: {plain:.2f})")
    added = (ours - theirs) + held + (parse - loads) + (guarded - plain)
    print(f"  added by the guards             {added:+6.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
