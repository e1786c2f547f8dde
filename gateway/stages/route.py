"""The route stage: which upstream and endpoint a path means; unknown paths stop here."""

from __future__ import annotations

from aiohttp import web

from gateway.context import RequestContext
from gateway.errors import MethodNotAllowed, NotFound, RequestTooLarge
from gateway.routing.router import Route
from gateway.state import CONFIG, LABELS, ROUTER


async def route_stage(request: web.Request, ctx: RequestContext) -> None:
    hit = request.app[ROUTER].resolve(request.method, request.path)
    if hit is None:
        # The path is client text: it is not echoed back.
        raise NotFound("Not found: this gateway does not serve that path.")
    if not isinstance(hit, Route):
        raise MethodNotAllowed(f"Method not allowed: use {hit.method} for this endpoint.")
    ctx.route = hit
    if hit.endpoint.kind == "models" and hit.upstream_path.startswith("/v1/models/"):
        # The model a GET /v1/models/{id} names is checked against the key's model scopes
        # like a body's (the providers' match() validated its shape).
        ctx.model = hit.upstream_path[len("/v1/models/") :]
        ctx.model_label = request.app[LABELS].model(ctx.model)
    ctx.forward_headers = hit.provider.forward_request_headers(
        request.headers.items(), request.headers.get("connection")
    )
    limit = request.app[CONFIG].server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise RequestTooLarge(f"Request body exceeds the gateway's limit of {limit} bytes.")
