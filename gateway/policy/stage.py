"""The policy stage: key scopes and the ZDR policy.

PLACEHOLDER until the ZDR policy lands (issue 5): everything routed is allowed.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler


@web.middleware
async def policy_stage(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await handler(request)
