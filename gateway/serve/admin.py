"""The admin listener: /healthz, /readyz, /metrics and /zdr/posture, on a port of its own."""

from __future__ import annotations

import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from gateway import SERVER_NAME
from gateway.config import Config
from gateway.observe import posture
from gateway.observe.metrics import Metrics
from gateway.ratelimit.service import RateLimit
from gateway.state import CONFIG, METRICS, RATELIMIT, READY


def build_admin_app(
    metrics: Metrics,
    ready: list[bool],
    ratelimit: RateLimit | None = None,
    *,
    config: Config | None = None,
) -> web.Application:
    app = web.Application()
    app[METRICS] = metrics
    app[READY] = ready
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
    rl = request.app.get(RATELIMIT)
    ready, detail = rl.readiness() if rl is not None else (True, None)
    if not ready:
        return web.json_response({"status": "not ready", "reason": detail}, status=503)
    if detail is not None:
        return web.json_response({"status": "ready", "degraded": detail})
    return web.json_response({"status": "ready"})


async def metrics_view(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # `serve --workers N`: every worker's samples, aggregated (see gateway/serve/workers.py).
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    body = generate_latest(registry)
    return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})


async def posture_view(request: web.Request) -> web.Response:
    body = posture.build(request.app[CONFIG], request.app[METRICS])
    return web.json_response(body, headers={"cache-control": "no-store"})
