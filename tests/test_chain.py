"""The chain runner: stages in order, errors shaped, `on_end` on every path, one record."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from gateway import config as config_mod
from gateway.app import build_app
from gateway.chain import Chain, Stage
from gateway.context import RequestContext
from gateway.errors import PermissionDenied
from gateway.observe.metrics import Metrics
from gateway.stages.route import route_stage
from gateway.state import ACCESS_LOG, AUDIT, CONFIG, LABELS, LOAD, METRICS, ROUTER
from tests.support.eventually import eventually

CANARY = "CANARY-chain-7f3a"


def chain_app(
    config_dict: dict[str, Any], stages: list[Stage], endpoint: Any
) -> tuple[web.Application, CollectorRegistry]:
    """The real app state that observe/errors read, around a chain of test stages."""
    registry = CollectorRegistry()
    real = build_app(config_mod.parse(yaml.safe_dump(config_dict)), Metrics(registry))
    app = web.Application()
    for key in (CONFIG, METRICS, LABELS, ACCESS_LOG, AUDIT, ROUTER, LOAD):
        app[key] = real[key]  # type: ignore[misc]  # keys of several value types
    chain = Chain([route_stage, *stages], endpoint, real[LOAD])
    app.router.add_route("*", "/{tail:.*}", chain.handle)
    return app, registry


def requests_seen(registry: CollectorRegistry, code: str) -> float:
    labels = {"provider": "anthropic", "route": "messages", "code": code}
    total = 0.0
    for metric in registry.collect():
        if metric.name != "zdr_gateway_requests":
            continue
        for s in metric.samples:
            if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def recorder(log: list[str], name: str) -> Stage:
    async def stage(request: web.Request, ctx: RequestContext) -> None:
        log.append(name)

        async def done() -> None:
            log.append(f"end:{name}:{ctx.status}")

        ctx.on_end.append(done)

    return stage


async def ok(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


async def test_stages_run_in_order_and_on_end_unwinds_in_reverse(
    aiohttp_client: Any, config_dict: dict[str, Any]
) -> None:
    log: list[str] = []
    app, registry = chain_app(config_dict, [recorder(log, "a"), recorder(log, "b")], ok)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    resp = await client.post("/v1/messages", json={})
    assert resp.status == 200
    assert log == ["a", "b", "end:b:0", "end:a:0"]
    assert requests_seen(registry, "200") == 1


async def test_a_refusing_stage_stops_the_chain_and_still_unwinds(
    aiohttp_client: Any, config_dict: dict[str, Any]
) -> None:
    log: list[str] = []

    async def refuse(request: web.Request, ctx: RequestContext) -> None:
        raise PermissionDenied("Refused by a test stage.", reason="policy")

    reached: list[bool] = []

    async def endpoint(request: web.Request) -> web.StreamResponse:
        reached.append(True)
        return await ok(request)

    stages = [recorder(log, "a"), refuse, recorder(log, "never")]
    app, registry = chain_app(config_dict, stages, endpoint)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    resp = await client.post("/v1/messages", json={})
    assert resp.status == 403
    body = await resp.json()
    assert body["type"] == "error"
    assert body["error"] == {"type": "permission_error", "message": "Refused by a test stage."}
    assert resp.headers["request-id"].startswith("gw_")
    # The error response exists by the time on_end runs: its status is on the context.
    assert log == ["a", "end:a:403"]
    assert reached == []
    assert requests_seen(registry, "403") == 1


async def test_an_unexpected_exception_is_a_generic_500_without_its_text(
    aiohttp_client: Any, config_dict: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        raise ValueError(f"content quoted in an exception: {CANARY}")

    app, registry = chain_app(config_dict, [], broken)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    with caplog.at_level(logging.DEBUG):
        resp = await client.post("/v1/messages", json={})
        text = await resp.text()
    assert resp.status == 500
    assert "Internal gateway error." in text
    assert CANARY not in text
    assert CANARY not in caplog.text
    assert any(getattr(r, "error_class", None) == "ValueError" for r in caplog.records)
    assert requests_seen(registry, "500") == 1
    # The next request is unharmed: the same chain answers it.
    again = await client.post("/v1/messages", json={})
    assert again.status == 500
    assert requests_seen(registry, "500") == 2


async def test_client_gone_mid_request_unwinds_and_records_499(
    aiohttp_client: Any, config_dict: dict[str, Any]
) -> None:
    log: list[str] = []
    entered = asyncio.Event()
    never = asyncio.Event()

    async def hangs(request: web.Request) -> web.StreamResponse:
        entered.set()
        await never.wait()
        raise AssertionError("unreachable")

    app, registry = chain_app(config_dict, [recorder(log, "a")], hangs)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    task = asyncio.create_task(client.post("/v1/messages", json={}))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()  # the client closes its connection: aiohttp cancels the handler
    with pytest.raises(asyncio.CancelledError):
        await task

    await eventually(lambda: requests_seen(registry, "499") >= 1, interval=0.01)
    assert log == ["a", "end:a:0"]
    in_flight = registry.get_sample_value("zdr_gateway_requests_in_flight")
    assert in_flight == 0
