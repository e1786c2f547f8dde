"""The rate-limit stage.

PLACEHOLDER until rate limits land (issue 4): nothing is limited.
"""

from __future__ import annotations

from aiohttp import web


@web.middleware
async def ratelimit_stage(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    return await handler(request)
