"""The rate-limit stage on its own, in process: what it leaves on the request context."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry

from gateway.context import RequestContext, Usage
from gateway.observe.metrics import Metrics
from gateway.ratelimit import service
from gateway.ratelimit.settings import RateLimitSettings
from gateway.ratelimit.stage import ratelimit_stage
from gateway.state import RATELIMIT

from .test_backends import T0, principal


def app_with_limits(**settings: object) -> tuple[web.Application, service.RateLimit]:
    app = web.Application()
    rl = service.build(
        RateLimitSettings.model_validate(settings), Metrics(CollectorRegistry()), lambda: T0
    )
    app[RATELIMIT] = rl
    return app, rl


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Cyclic garbage kept in gc.garbage instead of freed, and no automatic collection."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_context_is_freed_without_the_cycle_collector(no_gc: None) -> None:
    # The settle callback sits in ctx.on_end and needs ctx.usage when it runs: were it to
    # keep ctx afterwards, every request's context (body and parsed JSON included) would
    # be a reference cycle, freed only by the garbage collector, late and at a CPU cost.
    app, rl = app_with_limits(defaults={"rpm": 10, "concurrency": 2})
    request = make_mocked_request("POST", "/v1/messages", app=app)
    for _ in range(3):
        ctx = RequestContext(request_id="r", principal=principal())
        await ratelimit_stage(request, ctx)
        assert ctx.reservation is not None
        assert len(ctx.on_end) == 1
        ctx.usage = Usage(output_tokens=1)
        for done in ctx.on_end:
            await done()
        del ctx, done
    assert await rl.limiter.in_flight(rl.rules(principal(), False)[1], T0) == 0
    gc.collect()
    assert not [o for o in gc.garbage if isinstance(o, RequestContext)]


async def test_settle_runs_once_and_charges_the_usage_it_finds_then() -> None:
    app, rl = app_with_limits(defaults={"rpm": 10, "concurrency": 1})
    request = make_mocked_request("POST", "/v1/messages", app=app)
    ctx = RequestContext(request_id="r", principal=principal())
    await ratelimit_stage(request, ctx)
    (settle,) = ctx.on_end
    slot = rl.rules(principal(), False)[1]
    assert await rl.limiter.in_flight(slot, T0) == 1
    await settle()
    await settle()  # a second run is harmless
    assert await rl.limiter.in_flight(slot, T0) == 0
    assert ctx.extra_headers["anthropic-ratelimit-requests-remaining"] == "9"


async def test_headers_join_those_another_stage_set() -> None:
    app, _ = app_with_limits(defaults={"rpm": 10})
    request = make_mocked_request("POST", "/v1/messages", app=app)
    ctx = RequestContext(request_id="r", principal=principal())
    ctx.extra_headers["x-other"] = "1"
    await ratelimit_stage(request, ctx)
    assert ctx.extra_headers["x-other"] == "1"
    assert ctx.extra_headers["anthropic-ratelimit-requests-limit"] == "10"
