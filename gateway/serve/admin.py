"""The admin listener: /healthz, /readyz, /metrics and /zdr/posture, on a port of its own."""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from gateway import SERVER_NAME
from gateway.config import Config
from gateway.observe import posture
from gateway.observe.metrics import Metrics
from gateway.ratelimit.service import RateLimit
from gateway.routing.upstream import UpstreamPool
from gateway.serve.load import Load
from gateway.state import CONFIG, LOAD, METRICS, RATELIMIT, READY, UPSTREAMS


def build_admin_app(
    metrics: Metrics,
    ready: list[bool],
    ratelimit: RateLimit | None = None,
    *,
    config: Config | None = None,
    upstreams: UpstreamPool | None = None,
    load: Load | None = None,
) -> web.Application:
    app = web.Application()
    app[METRICS] = metrics
    app[READY] = ready
    if upstreams is not None:
        app[UPSTREAMS] = upstreams
    if load is not None and config is not None and config.server.shed.unready_after_seconds:
        app[LOAD] = load
    if ratelimit is not None:
        app[RATELIMIT] = ratelimit
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    if config is not None:
        app[CONFIG] = config
        app.router.add_get("/zdr/posture", posture_view)
    app.on_response_prepare.append(_server_header)
    return app


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if not request.app[READY][0]:
        return web.json_response({"status": "not ready", "reason": "draining"}, status=503)
    load = request.app.get(LOAD)
    if load is not None:
        unready_after = request.app[CONFIG].server.shed.unready_after_seconds
        if load.shedder.saturated_for() > unready_after:
            # Sustained shedding: let the Service send new connections to other replicas.
            return web.json_response({"status": "not ready", "reason": "shedding"}, status=503)
    rl = request.app.get(RATELIMIT)
    ready, detail = rl.readiness() if rl is not None else (True, None)
    if not ready:
        return web.json_response({"status": "not ready", "reason": detail}, status=503)
    body: dict[str, Any] = {"status": "ready"}
    if detail is not None:
        body["degraded"] = detail
    pool = request.app.get(UPSTREAMS)
    if pool is not None:
        # Breaker state by target name: shown when a breaker is not closed, or on
        # `?verbose`. Ready either way: an upstream outage is not this replica's
        # fault, and taking every replica out of the Service would not help.
        states = {u.name: {n: s["state"] for n, s in u.status().items()} for u in pool.upstreams}
        if "verbose" in request.query or any(
            s != "closed" for targets in states.values() for s in targets.values()
        ):
            body["upstreams"] = states
    return web.json_response(body)


async def metrics_view(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # `serve --workers N`: every worker's samples, aggregated (see gateway/serve/workers.py).
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    body = generate_latest(registry)
    return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})


async def posture_view(request: web.Request) -> web.Response:
    body = posture.build(request.app[CONFIG], request.app[METRICS], request.app.get(UPSTREAMS))
    return web.json_response(body, headers={"cache-control": "no-store"})
