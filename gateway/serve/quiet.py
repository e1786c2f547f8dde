"""HTTP protocol errors without echoes.

aiohttp answers a malformed request (a header line over the size limit, an
invalid header token, a bad request line) before any stage runs, and by
default it quotes the offending bytes — a credential, a URL, a header value —
both in the 400 response and in an ERROR log line with a traceback. A
gateway that must never log client content cannot allow that, so the
runners here answer such requests with a fixed, provider-shaped error and
log only the exception class.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway import SERVER_NAME
from gateway.providers.base import json_error

log = logging.getLogger("gateway.http")


class _QuietHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # SECURITY: neither `exc` nor `message` is used: both quote request bytes.
        log.warning(
            "malformed request refused",
            extra={"status": status, "error_class": type(exc).__name__ if exc else None},
        )
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        kind, text = (
            ("invalid_request_error", "Malformed HTTP request.")
            if status < 500
            else ("api_error", "Internal gateway error.")
        )
        body = json_error({"type": "error", "error": {"type": kind, "message": text}})
        resp = web.Response(status=status, body=body, content_type="application/json")
        resp.headers["Server"] = SERVER_NAME
        resp.force_close()
        return resp


class _QuietServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _QuietHandler(self, loop=self._loop, **self._kwargs)


class QuietAppRunner(web.AppRunner):
    """An AppRunner whose connections use `_QuietHandler` for protocol errors."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp offers no public hook for the handler class; the subclass adds
        # no state, so switching the class of the server it built is safe.
        server.__class__ = _QuietServer
        return server


def runner(app: web.Application, **kwargs: Any) -> QuietAppRunner:
    return QuietAppRunner(app, access_log=None, **kwargs)
