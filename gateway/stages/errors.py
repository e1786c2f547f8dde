"""Errors: every failure becomes a provider-shaped error response.

SECURITY: only gateway-authored messages reach the client or a log. An
unexpected exception is reported by its class name alone, because its text
may quote request content.
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway import SERVER_NAME
from gateway.context import RequestContext
from gateway.errors import GatewayError, InvalidRequest, NotFound, RequestTooLarge
from gateway.state import ROUTER

log = logging.getLogger("gateway.errors")


def to_gateway_error(exc: Exception, ctx: RequestContext) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, web.HTTPException):
        return _from_http(exc)
    log.error(
        "unhandled exception",
        extra={"request_id": ctx.request_id, "error_class": type(exc).__name__},
    )
    return GatewayError("Internal gateway error.")


def error_response(request: web.Request, ctx: RequestContext, err: GatewayError) -> web.Response:
    upstream = ctx.route.upstream if ctx.route else request.app[ROUTER].upstream_for(request.path)
    ctx.status = err.status
    ctx.error_type = err.type
    ctx.error_reason = err.reason
    body = upstream.provider.error_body(err.type, err.message, ctx.request_id)
    response = web.Response(status=err.status, body=body, content_type="application/json")
    response.headers["Server"] = SERVER_NAME
    response.headers["request-id"] = ctx.request_id
    response.headers["x-gateway-request-id"] = ctx.request_id
    response.headers.update(err.headers)
    response.headers.update(ctx.extra_headers)
    return response


def _from_http(exc: web.HTTPException) -> GatewayError:
    if exc.status == 413:
        return RequestTooLarge("Request body exceeds the gateway's limit.")
    if exc.status == 404:
        return NotFound("Not found: this gateway does not serve that path.")
    if 400 <= exc.status < 500:
        return InvalidRequest("The request could not be processed.")
    return GatewayError("Internal gateway error.")
