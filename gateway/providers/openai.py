"""OpenAI-compatible API adapter (chat completions, responses, embeddings, …)."""

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

_POST = {
    "/v1/chat/completions": "chat_completions",
    "/v1/responses": "responses",
    "/v1/embeddings": "embeddings",
    "/v1/moderations": "moderations",
    "/v1/completions": "completions",
}
MODELS = Endpoint("models", "GET", zdr_eligible=True, json_body=False)
_NON_ZDR = {
    "files": "files",
    "batches": "batches",
    "assistants": "assistants",
    "threads": "assistants",
    "vector_stores": "vector_stores",
    "conversations": "conversations",
    "fine_tuning": "fine_tuning",
    "evals": "evals",
    "videos": "videos",
}
_REQUEST_ID = re.compile(r"^req_[A-Za-z0-9_-]{1,100}$")
# Anthropic-named gateway error types → the OpenAI `type` an OpenAI SDK expects.
_TYPES = {
    "request_too_large": "invalid_request_error",
    "api_error": "server_error",
    "timeout_error": "timeout",
    "overloaded_error": "server_error",
    "rate_limit_error": "rate_limit_exceeded",
}


class OpenAI(Provider):
    name = "openai"
    stream_error_types = frozenset({"api_error"})
    request_headers = frozenset({"content-type", "accept", "user-agent", "openai-beta"})
    response_headers = frozenset(
        {"content-type", "x-request-id", "retry-after", "retry-after-ms", "x-should-retry"}
    )
    query_params = frozenset({"limit", "after", "order"})
    output_cap_fields = {
        # `max_tokens` is the deprecated spelling chat completions still accept.
        "chat_completions": ("max_completion_tokens", "max_tokens"),
        "responses": ("max_output_tokens",),
        "completions": ("max_tokens",),
    }

    def match(self, method: str, path: str) -> tuple[Endpoint, str] | None:
        kind = _POST.get(path)
        if kind is not None:
            return Endpoint(kind, "POST", zdr_eligible=True, json_body=True), path
        if path == "/v1/models":
            return MODELS, path
        if path.startswith("/v1/models/"):
            return (MODELS, path) if valid_model_id(path[len("/v1/models/") :]) else None
        parts = path.split("/")
        if len(parts) >= 3 and parts[1] == "v1" and parts[2] in _NON_ZDR:
            return Endpoint(_NON_ZDR[parts[2]], method, zdr_eligible=False, json_body=False), path
        return None

    def credential_headers(self, api_key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"}

    def error_body(self, err_type: str, message: str, request_id: str) -> bytes:
        return json_error(
            {
                "error": {
                    "message": message,
                    "type": _TYPES.get(err_type, err_type),
                    "param": None,
                    "code": None,
                }
            }
        )

    def usage_reader(self, event_stream: bool) -> UsageReader:
        return OpenAIStreamUsage() if event_stream else JSONUsage(apply_usage)

    def upstream_request_id(self, headers: CIMultiDictProxy[str]) -> str | None:
        value = headers.get("x-request-id")
        return value if value is not None and _REQUEST_ID.match(value) else None

    def _is_passthrough(self, lower_name: str) -> bool:
        return lower_name.startswith("x-ratelimit-")


def apply_usage(usage: Usage, data: Any) -> None:
    """Chat (`prompt_tokens`/`completion_tokens`) or Responses (`input_tokens`/`output_tokens`)."""
    if not isinstance(data, dict):
        return
    usage.input_tokens = count(data.get("prompt_tokens", data.get("input_tokens")))
    usage.output_tokens = count(data.get("completion_tokens", data.get("output_tokens")))
    details = data.get("prompt_tokens_details") or data.get("input_tokens_details")
    if isinstance(details, dict):
        usage.cache_read_input_tokens = count(details.get("cached_tokens"))


class OpenAIStreamUsage(UsageReader):
    _WANTED = frozenset({b"message", b"response.completed", b"error"})

    def __init__(self) -> None:
        self.usage = Usage()
        self.stream_error = None
        self._sse = SSESplitter(self._WANTED, self._event)

    def feed(self, chunk: bytes) -> None:
        self._sse.feed(chunk)

    def finish(self) -> None:
        self._sse.feed(b"\n\n")

    def _event(self, event: bytes, data: bytes) -> None:
        # Chat streams put usage only in the last chunk; skip the JSON decode otherwise.
        if b'"usage"' not in data and b'"error"' not in data:
            return
        try:
            payload = orjson.loads(data)
        except ValueError:
            return
        if not isinstance(payload, dict):
            return
        if payload.get("error"):
            self.stream_error = "api_error"
        response = payload.get("response")
        source = response if isinstance(response, dict) else payload
        if source.get("usage"):
            apply_usage(self.usage, source["usage"])
