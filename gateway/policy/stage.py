"""The policy stage: the ZDR policy (gateway/policy/decide.py).

A thin adapter: it hands `decide()` the route's bounded endpoint kind, the
provider, the `anthropic-beta` header, the parsed body and the caller's team;
a refusal becomes a 403 `permission_error` (counted by rule), a rewrite
replaces `ctx.json`. Decisions go to `ctx.decisions` for the audit trail.
"""

from __future__ import annotations

from aiohttp import web

from gateway.context import RequestContext
from gateway.errors import PermissionDenied
from gateway.policy.decide import BETA_HEADER, decide
from gateway.state import CONFIG, METRICS


async def policy_stage(request: web.Request, ctx: RequestContext) -> None:
    route = ctx.route
    if route is None:  # the route stage refuses unknown paths before this stage
        return
    team = ctx.principal.team if ctx.principal is not None else None
    # Judge the headers that will actually leave (the provider's allow-list minus
    # Connection-listed names); several anthropic-beta headers form one list.
    betas = ",".join(ctx.forward_headers.getall(BETA_HEADER, []))
    decision = decide(
        route.endpoint.kind,
        route.provider.name,
        {BETA_HEADER: betas},
        ctx.json,
        team,
        request.app[CONFIG].policy,
        zdr_eligible=route.zdr_eligible,
    )
    ctx.decisions.extend(decision.decisions)
    if decision.refused is not None:
        request.app[METRICS].policy_refusals.labels(decision.refused.id).inc()
        raise PermissionDenied(decision.refused.message, reason="policy")
    if decision.body is not None:
        ctx.json = decision.body
        ctx.body_rewritten = True
