"""Anthropic Messages API adapter."""

from __future__ import annotations

import re
from typing import Any

import orjson
from multidict import CIMultiDictProxy

from gateway.context import Usage
from gateway.providers.base import (
    Endpoint,
    JSONUsage,
    Provider,
    UsageReader,
    count,
    json_error,
    valid_model_id,
)
from gateway.providers.sse import SSESplitter

MESSAGES = Endpoint("messages", "POST", zdr_eligible=True, json_body=True)
COUNT_TOKENS = Endpoint("count_tokens", "POST", zdr_eligible=True, json_body=True)
MODELS = Endpoint("models", "GET", zdr_eligible=True, json_body=False)
# Known endpoints that create retention at the provider; routed only so that the
# policy can refuse them with a reason instead of a bare 404.
_NON_ZDR_PREFIXES = (
    ("/v1/messages/batches", "batches"),
    ("/v1/files", "files"),
    ("/v1/skills", "skills"),
    ("/v1/agents", "agents"),
    ("/v1/sessions", "agents"),
    ("/v1/environments", "agents"),
    ("/v1/vaults", "agents"),
    ("/v1/memory_stores", "agents"),
)
_EXACT = {
    "/v1/messages": MESSAGES,
    "/v1/messages/count_tokens": COUNT_TOKENS,
    "/v1/models": MODELS,
}
_REQUEST_ID = re.compile(r"^req_[A-Za-z0-9_-]{1,100}$")
# Error types Anthropic documents; anything else is counted as `other`.
ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    }
)


class Anthropic(Provider):
    name = "anthropic"
    request_headers = frozenset(
        {"anthropic-version", "anthropic-beta", "content-type", "accept", "user-agent"}
    )
    response_headers = frozenset(
        {"content-type", "request-id", "retry-after", "retry-after-ms", "x-should-retry"}
    )
    # Claude Code and the SDKs add anthropic-* headers with each release (e.g.
    # anthropic-dangerous-direct-browser-access); Anthropic asks gateways to pass them.
    request_header_prefixes = ("anthropic-",)
    query_params = frozenset({"beta", "limit", "after_id", "before_id"})
    output_cap_fields = {"messages": ("max_tokens",)}
    stream_error_types = ERROR_TYPES | {"other"}

    def match(self, method: str, path: str) -> tuple[Endpoint, str] | None:
        endpoint = _EXACT.get(path)
        if endpoint is not None:
            return endpoint, path
        if path.startswith("/v1/models/"):
            model_id = path[len("/v1/models/") :]
            return (MODELS, path) if valid_model_id(model_id) else None
        for prefix, kind in _NON_ZDR_PREFIXES:
            if path == prefix or path.startswith(prefix + "/"):
                return Endpoint(kind, method, zdr_eligible=False, json_body=False), path
        return None

    def credential_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def error_body(self, err_type: str, message: str, request_id: str) -> bytes:
        return json_error(
            {
                "type": "error",
                "error": {"type": err_type, "message": message},
                "request_id": request_id,
            }
        )

    def usage_reader(self, event_stream: bool) -> UsageReader:
        if event_stream:
            return AnthropicStreamUsage()
        return JSONUsage(lambda u, d: apply_usage(u, d, replace_input=True))

    def upstream_request_id(self, headers: CIMultiDictProxy[str]) -> str | None:
        value = headers.get("request-id")
        return value if value is not None and _REQUEST_ID.match(value) else None

    def _is_passthrough(self, lower_name: str) -> bool:
        return lower_name.startswith("anthropic-ratelimit-")


def apply_usage(usage: Usage, data: Any, *, replace_input: bool) -> None:
    """Copy counts from an Anthropic `usage` object; counts are cumulative, so last wins."""
    if not isinstance(data, dict):
        return
    if replace_input or "input_tokens" in data:
        usage.input_tokens = count(data.get("input_tokens", usage.input_tokens))
    for name in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        if name in data:
            setattr(usage, name, count(data[name]))
    if "output_tokens" in data:
        usage.output_tokens = count(data["output_tokens"])


class AnthropicStreamUsage(UsageReader):
    _WANTED = frozenset({b"message_start", b"message_delta", b"error"})
    # Counted (see finish), never decoded.
    _COUNTED = frozenset({b"content_block_delta"})

    def __init__(self) -> None:
        self.usage = Usage()
        self.stream_error = None
        self._sse = SSESplitter(self._WANTED, self._event, names_only=self._COUNTED)
        self._deltas = 0
        self._final = False

    def feed(self, chunk: bytes) -> None:
        self._sse.feed(chunk)

    def finish(self) -> None:
        self._sse.feed(b"\n\n")  # a final event the upstream did not terminate
        if not self._final and self._deltas > self.usage.output_tokens:
            # Cut off before the final `message_delta`: every delta the client received
            # carried at least one token, so that many were used (and are charged).
            self.usage.output_tokens = self._deltas

    def _event(self, event: bytes, data: bytes) -> None:
        if event == b"content_block_delta":
            self._deltas += 1  # counted, never decoded
            return
        try:
            payload = orjson.loads(data)
        except ValueError:
            return
        if not isinstance(payload, dict):
            return
        if event == b"message_start":
            message = payload.get("message")
            if isinstance(message, dict):
                apply_usage(self.usage, message.get("usage"), replace_input=True)
        elif event == b"message_delta":
            self._final = True
            apply_usage(self.usage, payload.get("usage"), replace_input=False)
        elif event == b"error":
            error = payload.get("error")
            kind = error.get("type") if isinstance(error, dict) else None
            self.stream_error = kind if kind in ERROR_TYPES else "other"
