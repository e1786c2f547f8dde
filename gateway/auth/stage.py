"""The auth stage: the client's credential becomes a `Principal` (headers only).

Every refusal is the same 401 with the same message, whatever check failed
(no oracle for an attacker probing keys); the bounded reason goes to
`zdr_gateway_auth_failures_total{reason}` and the audit trail only.
The key's scopes are checked by the scopes stage (gateway/stages/scopes.py) once the
body is parsed.
"""

from __future__ import annotations

from aiohttp import web

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
