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

from aiohttp import HttpVersion11, web
from aiohttp.web_urldispatcher import AbstractRoute, MatchInfoError, UrlMappingMatchInfo

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
from gateway.serve.lag import LagSampler
from gateway.serve.load import BodyBudget, Load, Shedder
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
    LOAD,
    METRICS,
    PII,
    RATELIMIT,
    READY,
    ROUTER,
    UPSTREAMS,
)

# The chain's route: every path the local routes do not answer.
CATCH_ALL = "/{tail:.*}"

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
    # aiohttp deprecates passing a router; the subclass adds no state, so switching the
    # class of the one it built is safe (as for the server in gateway/serve/quiet.py).
    app.router.__class__ = _EveryRequest
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
    app[LOAD] = load = build_load(config, metrics)
    shed = config.server.shed
    if shed.max_loop_lag_seconds or shed.unready_after_seconds:
        sampler = LagSampler(load.shedder, shed.lag_interval_seconds, metrics)
        app.cleanup_ctx.append(sampler.lifespan)
    # Claude Code's probe and telemetry, answered here and never forwarded; then every
    # other path goes through the chain, whose route stage decides what exists.
    local.add_routes(app, pool.upstreams, load)
    router = app.router
    assert isinstance(router, _EveryRequest)
    router.catch_all = router.add_route(
        "*", CATCH_ALL, Chain(STAGES, forward.handle, load).handle, expect_handler=_expect
    )
    router.index_local_routes()
    return app


class _EveryRequest(web.UrlDispatcher):
    """Every request goes to the chain, whose route stage decides what exists.

    SECURITY: a request aiohttp's router matches to nothing (CONNECT's authority-form
    target, `CONNECT $`) got aiohttp's own text/plain 404 with its version in `Server`,
    outside the chain (found by the fuzz suite)."""

    catch_all: AbstractRoute | None = None
    # The local routes' paths, exact and (for `{tail}` ones) as prefixes.
    _exact: frozenset[str] = frozenset()
    _prefixes: tuple[str, ...] = ()

    def index_local_routes(self) -> None:
        exact, prefixes = set(), []
        for resource in self.resources():
            info = resource.get_info()
            if "path" in info:
                exact.add(info["path"])
            elif resource is not self.catch_all.resource:  # type: ignore[union-attr]
                prefixes.append(resource.canonical.split("{", 1)[0])
        self._exact, self._prefixes = frozenset(exact), tuple(prefixes)

    async def resolve(self, request: web.Request) -> UrlMappingMatchInfo:
        path = request.rel_url.path_safe
        if path not in self._exact and not path.startswith(self._prefixes):
            # PERF: nearly every request is the chain's: matched here with one set lookup
            # and one startswith, not by aiohttp's walk up the path's parents, with a
            # coroutine and a regex per candidate (python -m bench, JSON c=32: -3 µs of
            # 0.2 ms per request).
            assert self.catch_all is not None
            return UrlMappingMatchInfo({"tail": ""}, self.catch_all)
        match = await super().resolve(request)
        if isinstance(match, MatchInfoError):
            # The chain's own route (Claude Code's local routes, stages/local.py, are others).
            assert self.catch_all is not None
            return UrlMappingMatchInfo({"tail": ""}, self.catch_all)
        return match


async def _expect(request: web.Request) -> None:
    """`Expect: 100-continue` is answered as aiohttp would; any other expectation is
    ignored, as RFC 9110 allows.

    SECURITY: aiohttp's default answers it with a 417 whose text quotes the header value
    (client text), outside the chain, so not provider-shaped either (found by the fuzz
    suite, tests/fuzz)."""
    expect = request.headers.get("expect", "")
    if request.version == HttpVersion11 and expect.lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0


def build_load(config: Config, metrics: Metrics) -> Load:
    server = config.server
    shedder = Shedder(server.shed.max_in_flight, server.shed.max_loop_lag_seconds)
    budget = BodyBudget(server.limits.body_memory_bytes)
    return Load(budget, shedder, server.shed.retry_after_seconds, metrics)


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
