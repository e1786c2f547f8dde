"""The request path, built in exactly one place.

    observe → errors → route → auth → body → scopes → policy → pseudonymise → ratelimit → forward

- observe: request id, in-flight gauge; when the request ends, metrics, the
  audit event and the access log line (metadata only). Outermost, so it sees
  the final status of every request, error responses included.
- errors: any exception becomes a provider-shaped error response; no
  exception text that was not written by the gateway reaches the client.
- route: path → upstream and endpoint kind; unknown paths are 404 here,
  before anything else is read.
- auth: the credential becomes a `Principal` (headers only: an unauthenticated
  client cannot make the gateway read a body).
- body: the request body, capped, parsed once; model/stream/max_tokens.
- scopes: endpoint, model and max_tokens against the key's scopes (403).
- policy: the ZDR policy; may rewrite the body.
- pseudonymise: personal data replaced by placeholders per the team's `pii:` modes
  (gateway/pii); the forward stage puts the originals back in the answer.
- ratelimit: requests, tokens, concurrency; reconciles usage afterwards.
- forward: the upstream call, streamed back chunk by chunk.

observe and errors are the frame the chain runner puts around every request
(gateway/chain.py); the stages between them run in the order of `STAGES`.
Claude Code's `HEAD /` probe and `/api/event_logging/*` telemetry are answered by
the gateway itself, inside the same frame, and never forwarded (gateway/stages/local.py).
"""

from __future__ import annotations

from aiohttp import web

from gateway.audit.trail import Auditor
from gateway.auth.rejected import REASONS
from gateway.auth.runtime import AuthRuntime
from gateway.auth.stage import auth_stage
from gateway.chain import Chain, Stage
from gateway.config import Config
from gateway.observe.metrics import Labels, Metrics
from gateway.policy.rules import RULES
from gateway.policy.stage import policy_stage
from gateway.ratelimit import service as ratelimit
from gateway.ratelimit.stage import ratelimit_stage
from gateway.routing.router import Router
from gateway.routing.upstream import UpstreamPool
from gateway.stages import forward, local
from gateway.stages.body import body_stage
from gateway.stages.pseudonymise import pseudonymise_stage
from gateway.stages.route import route_stage
from gateway.stages.scopes import scopes_stage
from gateway.state import (
    ACCESS_LOG,
    AUDIT,
    AUTH,
    CONFIG,
    LABELS,
    METRICS,
    PII,
    RATELIMIT,
    READY,
    ROUTER,
    UPSTREAMS,
)

STAGES: tuple[Stage, ...] = (
    route_stage,
    auth_stage,
    body_stage,
    scopes_stage,
    policy_stage,
    pseudonymise_stage,
    ratelimit_stage,
)


def build_app(config: Config, metrics: Metrics, config_path: str | None = None) -> web.Application:
    app = web.Application(
        # The body stage enforces the configured cap itself, with a provider-shaped 413.
        client_max_size=config.server.max_body_bytes + 1,
    )
    app[CONFIG] = config
    app[METRICS] = metrics
    app[LABELS] = Labels(
        config.metrics.teams, config.metrics.models, config.metrics.max_glob_models
    )
    pool = UpstreamPool(config.upstreams, metrics)
    app[UPSTREAMS] = pool
    app[ROUTER] = Router(pool.upstreams)
    _export_at_zero(metrics, pool)
    app[READY] = [True]
    app[ACCESS_LOG] = config.logging.access_line(config.audit.sink)
    # Keys are parsed here: a missing or wrong key file fails startup, not a request.
    app[AUTH] = AuthRuntime(config, metrics, config_path)
    app[AUDIT] = Auditor.open(config.audit)
    app.cleanup_ctx.append(_upstreams_ctx)
    app.cleanup_ctx.append(_auth_ctx)
    app.cleanup_ctx.append(_audit_ctx)
    if config.pii.enabled:
        # Detectors (and the libraries behind them) load here, only for categories on.
        from gateway.pii.runtime import PiiRuntime

        app[PII] = PiiRuntime(config.pii)
    if config.ratelimit.enabled:
        app[RATELIMIT] = ratelimit.build(config.ratelimit, metrics)
        app.cleanup_ctx.append(_ratelimit_ctx)
    # Claude Code's probe and telemetry, answered here and never forwarded; then every
    # other path goes through the chain, whose route stage decides what exists.
    local.add_routes(app, pool.upstreams)
    app.router.add_route("*", "/{tail:.*}", Chain(STAGES, forward.handle).handle)
    return app


def _export_at_zero(metrics: Metrics, pool: UpstreamPool) -> None:
    upstream_kinds = [f"upstream_{kind}" for kind in forward.UPSTREAM_ERROR_KINDS]
    providers = {u.provider for u in pool.upstreams}
    metrics.export_at_zero(
        auth_reasons=REASONS,
        policy_rules=[rule.id for rule in RULES],
        upstreams=[u.name for u in pool.upstreams],
        upstream_error_kinds=forward.UPSTREAM_ERROR_KINDS,
        stream_errors={p.name: [*p.stream_error_types, *upstream_kinds] for p in providers},
    )


async def _upstreams_ctx(app: web.Application):  # type: ignore[no-untyped-def]
    await app[UPSTREAMS].start()
    yield
    await app[UPSTREAMS].close()


async def _auth_ctx(app: web.Application):  # type: ignore[no-untyped-def]
    async for _ in app[AUTH].run():
        yield


async def _audit_ctx(app: web.Application):  # type: ignore[no-untyped-def]
    yield
    app[AUDIT].close()


async def _ratelimit_ctx(app: web.Application):  # type: ignore[no-untyped-def]
    async with app[RATELIMIT].running():
        yield
