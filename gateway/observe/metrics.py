"""Every metric the gateway exports, bound to an injected `CollectorRegistry`.

Names follow `zdr_gateway_<noun>_<unit>`. Every label value is bounded: route
and endpoint kinds come from the gateway's own tables, teams and models pass
through `Labels`, reasons and rules are fixed strings chosen by the code.
Nothing a client sends becomes a label value unchecked.
"""

from __future__ import annotations

import fnmatch
import platform
import re
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.metrics import MetricWrapperBase

from gateway import __version__

# LLM latencies run from tens of milliseconds (count_tokens) to minutes (long generations).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
GAP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
OTHER = "other"
# Connection phases with a deadline (server.timeouts); shed reasons are in serve/load.py.
CONNECTION_PHASES = ("handshake", "head", "body", "idle")
SHED_REASONS = ("body_budget", "in_flight", "loop_lag")
_SAFE_LABEL = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class Labels:
    """Maps client-derived values (team, model) onto a bounded set of label values.

    A model name is its own label only when it is listed exactly, or matches a
    configured glob *and* fewer than `max_models` glob-matched names have been
    seen; everything else is `other`. So a client can neither create
    unbounded series nor, with exact lists, put text of its own into /metrics.
    """

    def __init__(
        self, teams: Iterable[str], model_patterns: Iterable[str], max_models: int = 50
    ) -> None:
        self._teams = frozenset(teams)
        patterns = tuple(model_patterns)
        self._exact = frozenset(p for p in patterns if not _is_glob(p))
        self._globs = tuple(p for p in patterns if _is_glob(p))
        self._max_models = max_models
        self._from_globs: set[str] = set()
        self._cache: dict[str, str] = {}

    def team(self, team: str | None) -> str:
        if team is None:
            return "none"
        if team in ("anonymous",) or team in self._teams:
            return team
        return OTHER

    def model(self, model: str | None) -> str:
        if model is None:
            return "none"
        hit = self._cache.get(model)
        if hit is not None:
            return hit
        label = OTHER
        if model in self._exact:
            label = model
        elif (
            self._globs
            and _SAFE_LABEL.match(model)
            and any(fnmatch.fnmatchcase(model, p) for p in self._globs)
            and (model in self._from_globs or len(self._from_globs) < self._max_models)
        ):
            self._from_globs.add(model)
            label = model
        if len(self._cache) < 1024:  # bounded: the cache cannot grow with client input
            self._cache[model] = label
        return label


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "zdr_gateway_requests",
            "Requests handled, by provider, route, status class and code, and team.",
            ["provider", "route", "status_class", "code", "team"],
            registry=r,
        )
        self.request_duration = Histogram(
            "zdr_gateway_request_duration_seconds",
            "Time from request accepted to last response byte written.",
            ["provider", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "zdr_gateway_time_to_first_byte_seconds",
            "Time from request accepted to first response body byte written.",
            ["provider", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            "zdr_gateway_upstream_duration_seconds",
            "Time from upstream request sent to upstream response ended.",
            ["provider", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.chunk_gap = Histogram(
            "zdr_gateway_stream_chunk_gap_seconds",
            "Gap between consecutive chunks of a streamed response.",
            ["provider"],
            buckets=GAP_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "zdr_gateway_requests_in_flight",
            "Requests currently being handled.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.request_bytes = Counter(
            "zdr_gateway_request_bytes",
            "Request body bytes received from clients.",
            ["provider", "route"],
            registry=r,
        )
        self.response_bytes = Counter(
            "zdr_gateway_response_bytes",
            "Response body bytes sent to clients.",
            ["provider", "route"],
            registry=r,
        )
        self.tokens = Counter(
            "zdr_gateway_tokens",
            "Tokens reported by the provider, by kind (input, output, cache_read, cache_creation).",
            ["provider", "model", "kind", "team"],
            registry=r,
        )
        self.stream_errors = Counter(
            "zdr_gateway_stream_errors",
            "Errors inside a response after a 200 was sent (SSE `event: error`, resets).",
            ["provider", "type"],
            registry=r,
        )
        self.auth_failures = Counter(
            "zdr_gateway_auth_failures",
            "Requests refused by authentication, by reason.",
            ["reason"],
            registry=r,
        )
        # `issuer` is the issuer's configured `name` (bounded by config).
        self.oidc_jwks_refreshes = Counter(
            "zdr_gateway_oidc_jwks_refreshes",
            "JWKS fetches from OIDC issuers, by outcome (ok, error, invalid).",
            ["issuer", "outcome"],
            registry=r,
        )
        self.oidc_jwks_stale = Gauge(
            "zdr_gateway_oidc_jwks_stale",
            "1 while an issuer's last JWKS refresh failed and cached keys are served.",
            ["issuer"],
            registry=r,
            multiprocess_mode="max",
        )
        self.policy_refusals = Counter(
            "zdr_gateway_policy_refusals",
            "Requests refused by the ZDR policy, by rule.",
            ["rule"],
            registry=r,
        )
        # Bounded kinds ("beta", "tool"), never the value: a client chooses the value.
        self.policy_unlisted = Counter(
            "zdr_gateway_policy_unlisted",
            "Requests carrying an anthropic-beta value or tool type the catalogue does not "
            "list, by kind.",
            ["kind"],
            registry=r,
        )
        for kind in ("beta", "tool"):
            self.policy_unlisted.labels(kind)  # exported at 0 from start-up
        self.pii_values = Counter(
            "zdr_gateway_pii_values",
            "Personal data values found in requests, by category and what was done "
            "(pseudonymise, mask, block). Counts only, never values.",
            ["category", "mode"],
            registry=r,
        )
        self.pii_errors = Counter(
            "zdr_gateway_pii_detector_errors",
            "Requests refused because a personal-data detector failed, by category.",
            ["category"],
            registry=r,
        )
        self.ratelimit_decisions = Counter(
            "zdr_gateway_ratelimit_decisions",
            "Rate-limit decisions by limit and outcome (allowed, refused, shadow_refused, error).",
            ["limit", "outcome"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "zdr_gateway_upstream_errors",
            "Upstream failures by kind (connect, tls, timeout, reset, protocol).",
            ["upstream", "kind"],
            registry=r,
        )
        # `target` is the target's configured `name` (bounded by config), never its URL.
        self.upstream_attempts = Counter(
            "zdr_gateway_upstream_attempts",
            "Upstream attempts by target and outcome (success, client_error, server_error, "
            "retryable_status, connect, tls, timeout, reset, protocol).",
            ["upstream", "target", "outcome"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "zdr_gateway_upstream_breaker_state",
            "Circuit breaker state per target: 0 closed, 1 half-open, 2 open.",
            ["upstream", "target"],
            registry=r,
            multiprocess_mode="max",
        )
        self.retry_budget_exhausted = Counter(
            "zdr_gateway_upstream_retry_budget_exhausted",
            "Retries not made because the upstream's retry budget was spent.",
            ["upstream"],
            registry=r,
        )
        self.upstream_unavailable = Counter(
            "zdr_gateway_upstream_unavailable",
            "Requests answered 503 because no target they may use was available.",
            ["upstream"],
            registry=r,
        )
        self.redis_duration = Histogram(
            "zdr_gateway_redis_duration_seconds",
            "Redis round-trip time by operation.",
            ["op"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.redis_errors = Counter(
            "zdr_gateway_redis_errors",
            "Redis operations that failed, by operation.",
            ["op"],
            registry=r,
        )
        self.tls_reloads = Counter(
            "zdr_gateway_tls_reloads",
            "Server certificate changes seen on disk, by outcome (success, error: the "
            "previous certificate is still served).",
            ["outcome"],
            registry=r,
        )
        self.tls_cert_expiry = Gauge(
            "zdr_gateway_tls_cert_expiry_timestamp_seconds",
            "notAfter of the server certificate being served (Unix time).",
            registry=r,
            multiprocess_mode="min",
        )
        self.build_info = Gauge(
            "zdr_gateway_build_info",
            "Build information; always 1.",
            ["version", "python"],
            registry=r,
            multiprocess_mode="max",
        )
        self.config_info = Gauge(
            "zdr_gateway_config_info",
            "Hash of the effective config; always 1. Differs across replicas = drift.",
            ["hash"],
            registry=r,
            multiprocess_mode="max",
        )
        self.provider_logging = Gauge(
            "zdr_gateway_provider_invocation_logging",
            "Whether the cloud account behind a target logs model invocations (prompts "
            "and completions): 1 it does, 0 it does not, -1 unknown (see /zdr/posture).",
            ["upstream", "target"],
            registry=r,
            multiprocess_mode="max",
        )
        self.ready = Gauge(
            "zdr_gateway_ready",
            "1 while the gateway accepts new requests, 0 while starting or draining.",
            registry=r,
            multiprocess_mode="min",
        )
        self.connections_open = Gauge(
            "zdr_gateway_client_connections_open",
            "Client connections open (TLS handshakes included); capped by "
            "server.limits.max_connections.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.connections_refused = Counter(
            "zdr_gateway_client_connections_refused",
            "Client connections closed on accept because the process was at its cap.",
            registry=r,
        )
        self.connection_timeouts = Counter(
            "zdr_gateway_client_connection_timeouts",
            "Client connections closed for missing a deadline, by phase "
            "(handshake, head, body, idle).",
            ["phase"],
            registry=r,
        )
        self.shed = Counter(
            "zdr_gateway_shed_requests",
            "Requests answered 529 without being served, by reason (body_budget, "
            "in_flight, loop_lag).",
            ["reason"],
            registry=r,
        )
        self.buffered_body_bytes = Gauge(
            "zdr_gateway_buffered_body_bytes",
            "Request body bytes reserved in memory by in-flight requests "
            "(capped by server.limits.body_memory_bytes).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.loop_lag = Gauge(
            "zdr_gateway_event_loop_lag_seconds",
            "How late the event loop ran its last lag-sampling timer.",
            registry=r,
            multiprocess_mode="max",
        )
        for phase in CONNECTION_PHASES:
            self.connection_timeouts.labels(phase)
        for reason in SHED_REASONS:
            self.shed.labels(reason)
        self.build_info.labels(__version__, platform.python_version()).set(1)
        # process_resident_memory_bytes, process_cpu_seconds_total, open fds: saturation
        # panels and the "memory stays flat while streaming" claim, seen from Prometheus.
        ProcessCollector(registry=r)
        for metric in (
            self.requests,
            self.request_duration,
            self.ttfb,
            self.upstream_duration,
            self.chunk_gap,
            self.request_bytes,
            self.response_bytes,
            self.tokens,
            self.stream_errors,
            self.upstream_errors,
            self.upstream_attempts,
            self.ratelimit_decisions,
            self.connection_timeouts,
            self.shed,
        ):
            _memoise_labels(metric)

    def export_at_zero(
        self,
        *,
        auth_reasons: Iterable[str],
        policy_rules: Iterable[str],
        upstreams: Iterable[str],
        upstream_error_kinds: Iterable[str],
        stream_errors: Mapping[str, Iterable[str]],
    ) -> None:
        """Create the alert and dashboard series at 0 before the first event, so that a
        fresh gateway exports them (Prometheus instrumentation guide: "avoid missing
        metrics"; `rate()` and `absent()` then mean what they say). Every domain here is
        bounded by code or config. `stream_errors` maps a provider to its error types."""
        for reason in auth_reasons:
            self.auth_failures.labels(reason)
        for rule in policy_rules:
            self.policy_refusals.labels(rule)
        kinds = tuple(upstream_error_kinds)
        for upstream in upstreams:
            for kind in kinds:
                self.upstream_errors.labels(upstream, kind)
            self.retry_budget_exhausted.labels(upstream)
            self.upstream_unavailable.labels(upstream)
        for provider, types in stream_errors.items():
            for kind in types:
                self.stream_errors.labels(provider, kind)

    def set_config_hash(self, digest: str) -> None:
        self.config_info.clear()
        self.config_info.labels(digest).set(1)


def _memoise_labels(metric: MetricWrapperBase) -> None:
    """Memoise `metric.labels(*values)` for the request path.

    prometheus_client validates the values and takes a lock on every `labels()` call;
    a request makes about ten. Every label value is bounded (see `Labels`), so the memo
    is too. Not for metrics that are `clear()`ed or `remove()`d (config_info): the memo
    would keep handing out children the registry no longer exports.
    """
    memo: dict[tuple[str, ...], MetricWrapperBase] = {}
    labels = metric.labels

    def memoised(*values: str, **by_name: str) -> MetricWrapperBase:
        if by_name:  # labels(provider=...) style: not memoised, still correct
            return labels(*values, **by_name)
        child = memo.get(values)
        if child is None:
            child = memo[values] = labels(*values)
        return child

    # An instance attribute shadows the class's method for this metric only.
    metric.__dict__["labels"] = memoised
