"""The gateway's error hierarchy.

A stage stops a request by raising a `GatewayError`. The error carries only
fixed, gateway-authored text: never a body, a header value or an unvalidated
client string. `gateway.stages.errors` maps it to the caller's provider
shape in one place (`providers.<name>.error_body`).
"""

from __future__ import annotations

from collections.abc import Mapping


class GatewayError(Exception):
    """Base class. `type` is the provider-neutral error type (Anthropic names)."""

    status = 500
    type = "api_error"
    # Reason label for metrics and audit; bounded, set by the raiser.
    reason = "internal"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.headers: dict[str, str] = dict(headers or {})


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    reason = "invalid_request"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    reason = "authentication"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    reason = "permission"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    reason = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    reason = "method_not_allowed"


class RequestTimeout(GatewayError):
    status = 408
    type = "timeout_error"
    reason = "client_timeout"


class RequestTooLarge(GatewayError):
    status = 413
    type = "request_too_large"
    reason = "too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    type = "invalid_request_error"
    reason = "content_type"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    reason = "rate_limited"


class UpstreamError(GatewayError):
    status = 502
    type = "api_error"
    reason = "upstream"


class Unavailable(GatewayError):
    status = 503
    type = "api_error"
    reason = "unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "timeout_error"
    reason = "upstream_timeout"


class Overloaded(GatewayError):
    """The process is saturated (memory budget, in-flight cap, event-loop lag): retry.

    529 with `retry-after`: the Anthropic SDKs, the OpenAI SDK (5xx) and Claude Code all
    retry it with backoff."""

    status = 529
    type = "overloaded_error"
    reason = "overloaded"


class StartupError(Exception):
    """The gateway cannot start (a port in use, a file that does not load). Its message is
    the gateway's own words, naming the config option; the CLI prints it as one line."""
