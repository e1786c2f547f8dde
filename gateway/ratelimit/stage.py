"""The rate-limit stage.

PLACEHOLDER until rate limits land (issue 4): nothing is limited.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler


@web.middleware
async def ratelimit_stage(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await handler(request)
