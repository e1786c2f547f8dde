"""The scopes stage: endpoint, model and `max_tokens` against the caller's key.

It runs once the body is parsed (the model and the cap come from it) and before the
ZDR policy. A scope refusal is a 403 `permission_error` naming the scope (gateway/
auth/scopes.py); a ceiling may clamp or default the request's output cap instead.
"""

from __future__ import annotations

from aiohttp import web

from gateway.auth import scopes
from gateway.context import RequestContext
from gateway.state import AUTH


async def scopes_stage(request: web.Request, ctx: RequestContext) -> None:
    """Endpoint/model/max_tokens against the principal's scopes; clamps when configured."""
    if ctx.principal is None or ctx.route is None:
        return
    runtime = request.app.get(AUTH)
    clamp = runtime is not None and runtime.current.clamp
    wanted = ctx.max_tokens
    allowed = scopes.check(ctx.principal, ctx.route.endpoint.kind, ctx.model, wanted, clamp)
    ceiling = ctx.principal.max_tokens
    fields = ctx.route.provider.output_cap_fields.get(ctx.route.endpoint.kind, ())
    if wanted is None and ceiling is not None and fields and ctx.json is not None:
        # SECURITY: an uncapped request (OpenAI allows one) would let the model run to
        # its own maximum past the key's ceiling: the ceiling becomes the cap.
        _set_cap(ctx, fields[0], ceiling, "scope_max_tokens_defaulted")
    elif allowed != wanted and ctx.json is not None and allowed is not None:
        _set_cap(ctx, ctx.max_tokens_field or fields[0], allowed, "scope_max_tokens_clamped")


def _set_cap(ctx: RequestContext, field: str, value: int, decision: str) -> None:
    assert ctx.json is not None
    ctx.json[field] = value
    ctx.max_tokens, ctx.max_tokens_field = value, field
    ctx.body_rewritten = True
    ctx.decisions.append(decision)
