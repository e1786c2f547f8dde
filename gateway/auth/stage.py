"""The auth stage: the client's credential becomes a `Principal` (headers only).

Every refusal is the same 401 with the same message, whatever check failed
(no oracle for an attacker probing keys); the bounded reason goes to
`zdr_gateway_auth_failures_total{reason}` and the audit trail only.
`enforce_scopes` is called by the policy stage once the body is parsed.
"""

from __future__ import annotations

from aiohttp import web

from gateway.auth import scopes
from gateway.auth.authenticator import Authenticator
from gateway.auth.credentials import extract
from gateway.auth.principal import ANONYMOUS, Principal
from gateway.auth.rejected import PREFIX, Rejected
from gateway.context import RequestContext
from gateway.errors import AuthenticationFailed
from gateway.state import AUTH, METRICS

MESSAGE = "Invalid, expired, revoked or missing credential."


async def auth_stage(request: web.Request, ctx: RequestContext) -> None:
    auth = request.app[AUTH].current
    if not auth.settings.enabled:
        ctx.principal = ANONYMOUS
        return
    try:
        credential = extract(request.headers, request.rel_url.query)
        if credential is not None and credential.startswith(PREFIX):
            ctx.principal = auth.gateway_key(credential)
        else:
            ctx.principal = await _authenticate(request, auth, credential)
    except Rejected as exc:
        request.app[METRICS].auth_failures.labels(exc.reason).inc()
        raise AuthenticationFailed(MESSAGE, reason=f"auth_{exc.reason}") from None


async def _authenticate(
    request: web.Request, auth: Authenticator, credential: str | None
) -> Principal:
    if credential is not None:
        return await auth.authenticate(credential)
    if auth.mtls and request.transport is not None:
        principal = auth.identify_certificate(request.transport.get_extra_info("peercert"))
        if principal is not None:
            return principal
    raise Rejected("missing")


def enforce_scopes(request: web.Request, ctx: RequestContext) -> None:
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
