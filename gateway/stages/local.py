"""Claude Code's non-inference traffic, answered by the gateway itself.

- `HEAD /` (documented) and `HEAD /api/hello` (what Claude Code 2.1.328 sends) are its
  connectivity probe: 200, no body.
- `/api/event_logging/*` carries its telemetry batches (when nonessential traffic is
  not disabled): 200 `{}`.

Neither is forwarded: nothing reaches the upstream, so no credential is needed and
none is checked. The request body is never read by the gateway (aiohttp discards
whatever the client still sends); only the bounded metadata is recorded (endpoint
kinds `probe` and `telemetry`). Registered per Anthropic upstream, under its prefix,
ahead of the chain's catch-all route.
"""

from __future__ import annotations

from aiohttp import web

from gateway import SERVER_NAME
from gateway.chain import Chain
from gateway.context import RequestContext
from gateway.providers import Endpoint
from gateway.routing.router import Route
from gateway.routing.upstream import Upstream
from gateway.serve.load import Load
from gateway.state import CTX

PROBE = Endpoint("probe", "HEAD", zdr_eligible=True, json_body=False)
TELEMETRY = Endpoint("telemetry", "POST", zdr_eligible=True, json_body=False)


def add_routes(app: web.Application, upstreams: list[Upstream], load: Load) -> None:
    """`load`: a saturated gateway sheds these too (the chain's admission)."""
    for upstream in upstreams:
        if upstream.provider.name != "anthropic":
            continue
        prefix = upstream.prefix
        probe = Chain((_route(upstream, PROBE),), _probe, load).handle
        telemetry = Chain((_route(upstream, TELEMETRY),), _telemetry, load).handle
        for path in sorted({prefix or "/", prefix + "/", prefix + "/api/hello"}):
            app.router.add_route("HEAD", path, probe)
        app.router.add_route("GET", prefix + "/api/hello", probe)
        app.router.add_route("*", prefix + "/api/event_logging/{tail:.*}", telemetry)


def _route(upstream: Upstream, endpoint: Endpoint):  # type: ignore[no-untyped-def]
    route = Route(upstream, endpoint, "")

    async def local_route(request: web.Request, ctx: RequestContext) -> None:
        ctx.route = route  # for the bounded provider/endpoint labels only

    return local_route


async def _probe(request: web.Request) -> web.StreamResponse:
    return web.Response(status=200, headers=_headers(request))


async def _telemetry(request: web.Request) -> web.StreamResponse:
    # SECURITY: the body (telemetry about the user's session) is never read or kept.
    return web.json_response({}, headers=_headers(request))


def _headers(request: web.Request) -> dict[str, str]:
    return {"Server": SERVER_NAME, "x-gateway-request-id": request[CTX].request_id}
