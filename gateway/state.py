"""Typed keys for everything stored on the aiohttp app and request. All of them live here."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import CIMultiDict

from gateway.usage import Usage

if TYPE_CHECKING:
    from gateway.audit.trail import Auditor
    from gateway.auth.principal import Principal
    from gateway.auth.runtime import AuthRuntime
    from gateway.config import Config
    from gateway.metrics import Labels, Metrics
    from gateway.pii import PiiRuntime
    from gateway.ratelimit.service import RateLimit
    from gateway.routes import Route, Router
    from gateway.upstream import UpstreamPool


@dataclass(slots=True)
class RequestContext:
    """What the stages learn about one request. Metadata only, except `body`/`json`,
    which hold the request content in memory for the life of the request and are
    never logged, audited or put in an error (see THREAT_MODEL.md)."""

    request_id: str
    started: float = field(default_factory=time.monotonic)
    route: Route | None = None
    principal: Principal | None = None
    # Content: in memory only, dropped with the request.
    body: bytes = b""
    json: dict[str, Any] | None = None
    # Raw model name from the body: unvalidated client text. Use `model_label` outside.
    model: str | None = None
    model_label: str = "none"
    stream: bool = False
    # The output-token cap the client asked for, and the body field it came in (the
    # provider's name for it: max_tokens, max_completion_tokens, max_output_tokens).
    max_tokens: int | None = None
    max_tokens_field: str | None = None
    # Set by the policy stage when it rewrote the body (forward re-serialises json).
    body_rewritten: bool = False
    # Policy decisions (rule ids, bounded) for the audit trail.
    decisions: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    status: int = 0
    error_type: str | None = None
    error_reason: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    ttfb: float | None = None
    upstream_status: int | None = None
    # Upstream's request id, kept only when it has the provider's id shape.
    upstream_request_id: str | None = None
    stream_error: str | None = None
    # The client headers that will go upstream (the provider's allow-list, minus names
    # listed in Connection), computed once by the route stage; forward adds the credential.
    forward_headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    # Headers a stage adds to whatever response goes back (e.g. rate-limit state).
    extra_headers: dict[str, str] = field(default_factory=dict)
    # Placeholders made by the pseudonymise stage (a gateway.pii.restore.Originals, None
    # when none were made): content, in memory only, dropped with the request.
    pii: Any = None
    # Values replaced per category (counts only) for metrics and the audit trail.
    pii_counts: dict[str, int] | None = None
    # Opaque per-stage state (e.g. the rate limiter's reservation).
    reservation: Any = None
    # Run by the chain once the response has ended, on every path, last added first.
    on_end: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


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

CTX: web.RequestKey[RequestContext] = web.RequestKey("ctx")
