"""The auth stage: the client's credential becomes a `Principal`.

PLACEHOLDER until scoped keys land (issue 3): every request is anonymous.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.auth.principal import ANONYMOUS
from gateway.state import CTX


@web.middleware
async def auth_stage(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[CTX].principal = ANONYMOUS
    return await handler(request)
