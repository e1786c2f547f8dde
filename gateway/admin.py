"""The admin listener: /healthz, /readyz and /metrics, on a port of its own."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.metrics import Metrics
from gateway.state import METRICS, READY


def build_admin_app(metrics: Metrics, ready: list[bool]) -> web.Application:
    app = web.Application()
    app[METRICS] = metrics
    app[READY] = ready
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if request.app[READY][0]:
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "not ready", "reason": "draining"}, status=503)


async def metrics_view(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})
