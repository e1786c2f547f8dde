"""The policy stage: the ZDR policy (gateway/policy/judge.py).

A thin adapter: it hands `judge()` the route's bounded endpoint kind, the
provider, the `anthropic-beta` header, the parsed body and the caller's team.
A policy refusal is a 400 `invalid_request_error`, the way the provider itself
refuses a request the organisation's retention arrangement does not allow
(counted by rule); scope refusals (gateway/stages/scopes.py) stay 403
`permission_error`. A rewrite replaces `ctx.json`. Decisions go to
`ctx.decisions` for the audit trail; unlisted betas and tool types are counted
by kind.
"""

from __future__ import annotations

from aiohttp import web

from gateway.context import RequestContext
from gateway.errors import InvalidRequest
from gateway.policy.judge import BETA_HEADER, judge
from gateway.policy.splice import append_fields
from gateway.state import CONFIG, METRICS


async def policy_stage(request: web.Request, ctx: RequestContext) -> None:
    route = ctx.route
    if route is None:  # the route stage refuses unknown paths before this stage
        return
    team = ctx.principal.team if ctx.principal is not None else None
    # Judge the headers that will actually leave (the provider's allow-list minus
    # Connection-listed names); several anthropic-beta headers form one list.
    betas = ",".join(ctx.forward_headers.getall(BETA_HEADER, []))
    verdict = judge(
        route.endpoint.kind,
        route.provider.name,
        {BETA_HEADER: betas},
        ctx.json,
        team,
        request.app[CONFIG].policy,
        zdr_eligible=route.zdr_eligible,
    )
    ctx.decisions.extend(verdict.decisions)
    metrics = request.app[METRICS]
    for kind in verdict.unlisted:
        metrics.policy_unlisted.labels(kind).inc()
    if verdict.refused is not None:
        metrics.policy_refusals.labels(verdict.refused.id).inc()
        raise InvalidRequest(verdict.refused.message, reason="policy")
    if verdict.body is not None:
        original, ctx.json = ctx.json, verdict.body
        fields = [r.rewrite for r in verdict.rewrites if r.rewrite is not None]
        spliced = None
        if (
            not ctx.body_rewritten
            and original is not None
            and all(key not in original for key, _ in fields)
        ):
            # PERF: a field the client left out is appended to the body's bytes instead
            # of re-serialising the whole body: 16 µs instead of 685 µs for an 80 KB chat
            # completion (measured in process, see gateway/policy/splice.py).
            spliced = append_fields(ctx.body, fields)
        if spliced is not None:
            ctx.body = spliced
        else:
            ctx.body_rewritten = True  # forward re-serialises ctx.json
