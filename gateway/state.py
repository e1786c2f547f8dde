"""Typed keys for everything stored on the aiohttp app and request. All of them live here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.context import RequestContext

if TYPE_CHECKING:
    from gateway.audit.trail import Auditor
    from gateway.auth.runtime import AuthRuntime
    from gateway.config import Config
    from gateway.observe.metrics import Labels, Metrics
    from gateway.pii.runtime import PiiRuntime
    from gateway.ratelimit.service import RateLimit
    from gateway.routing.router import Router
    from gateway.routing.upstream import UpstreamPool
    from gateway.serve.load import Load


CONFIG: web.AppKey[Config] = web.AppKey("config")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
LABELS: web.AppKey[Labels] = web.AppKey("labels")
ROUTER: web.AppKey[Router] = web.AppKey("router")
UPSTREAMS: web.AppKey[UpstreamPool] = web.AppKey("upstreams")
AUDIT: web.AppKey[Auditor] = web.AppKey("audit")
# A one-element list so that shutdown can flip readiness without replacing the key.
READY: web.AppKey[list[bool]] = web.AppKey("ready")
# Whether the observe stage writes the access line (see LoggingSettings.access_line).
ACCESS_LOG: web.AppKey[bool] = web.AppKey("access_log")
# Current authenticator (swapped on reload), JWKS caches, revocation mirror.
AUTH: web.AppKey[AuthRuntime] = web.AppKey("auth")

# The rate limiter (absent = no limits, e.g. in unit tests of other stages).
RATELIMIT: web.AppKey[RateLimit] = web.AppKey("ratelimit")

# Pseudonymisation (absent = no `pii:` category on for anyone: the stage does nothing).
PII: web.AppKey[PiiRuntime] = web.AppKey("pii")
# The body budget and the shedder (gateway/serve/load.py).
LOAD: web.AppKey[Load] = web.AppKey("load")

CTX: web.RequestKey[RequestContext] = web.RequestKey("ctx")
