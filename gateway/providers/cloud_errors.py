"""Cloud errors in Anthropic's shape: the status and `error.type` an Anthropic client handles.

Bedrock names an error by `x-amzn-errortype` (`ThrottlingException:http://internal…`,
split at the colon) or, mid-stream, by an exception frame's `:exception-type`
(`throttlingException`); Vertex's quota errors come in Google's envelope
(`[{"error":{"code":429,"status":"RESOURCE_EXHAUSTED",…}}]`). The upstream's own
message goes back to the client (it is the answer to the client's request) but is
bounded, and never reaches a log: only the bounded type does.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.providers.base import json_error

MESSAGE_MAX = 1000
# Bedrock error type (first letter upper-cased) → (status, Anthropic error type).
BEDROCK: dict[str, tuple[int, str]] = {
    "ValidationException": (400, "invalid_request_error"),
    "AccessDeniedException": (403, "permission_error"),
    "ResourceNotFoundException": (404, "not_found_error"),
    "ThrottlingException": (429, "rate_limit_error"),
    "ModelNotReadyException": (429, "rate_limit_error"),
    "ServiceQuotaExceededException": (429, "rate_limit_error"),
    "ServiceUnavailableException": (529, "overloaded_error"),
    "ModelTimeoutException": (500, "api_error"),
    "ModelErrorException": (500, "api_error"),
    "ModelStreamErrorException": (500, "api_error"),
    "InternalServerException": (500, "api_error"),
}
# The gateway's own AWS/Google credentials were refused: the client's request is not at
# fault and its key is fine, so this is not a 401/403 (Claude Code shows those as a login
# problem); the operator fixes it.
_CREDENTIALS = (500, "api_error", "The cloud provider refused the gateway's credentials.")
_AWS_CREDENTIAL_ERRORS = frozenset(
    {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"}
)
GOOGLE: dict[str, tuple[int, str]] = {
    "RESOURCE_EXHAUSTED": (429, "rate_limit_error"),
    "INVALID_ARGUMENT": (400, "invalid_request_error"),
    "FAILED_PRECONDITION": (400, "invalid_request_error"),
    "OUT_OF_RANGE": (400, "invalid_request_error"),
    "NOT_FOUND": (404, "not_found_error"),
    "UNAVAILABLE": (529, "overloaded_error"),
    "DEADLINE_EXCEEDED": (504, "timeout_error"),
    "INTERNAL": (500, "api_error"),
    "UNKNOWN": (500, "api_error"),
}


def bedrock_type(value: str | None) -> str:
    """`ValidationException:http://…` → `ValidationException`; `throttlingException` too."""
    name = (value or "").split(":", 1)[0].strip()
    return name[:1].upper() + name[1:]


def by_status(status: int) -> tuple[int, str]:
    if status == 429:
        return 429, "rate_limit_error"
    if status in (401, 403):
        return _CREDENTIALS[0], _CREDENTIALS[1]
    if status == 404:
        return 404, "not_found_error"
    if 400 <= status < 500:
        return status, "invalid_request_error"
    return (529, "overloaded_error") if status in (503, 529) else (500, "api_error")


def bedrock_error(status: int, error_type: str | None, body: bytes) -> tuple[int, str, str]:
    """(status, Anthropic type, message) for a Bedrock HTTP error or exception frame."""
    name = bedrock_type(error_type)
    if name in _AWS_CREDENTIAL_ERRORS:
        return _CREDENTIALS
    mapped = BEDROCK.get(name) or by_status(status)
    if mapped[1] == "api_error" and status in (401, 403) and name not in BEDROCK:
        return _CREDENTIALS
    return mapped[0], mapped[1], _message(body) or "The Bedrock request failed."


def google_error(status: int, body: bytes) -> bytes | tuple[int, str, str]:
    """The body as it is when already Anthropic-shaped; else (status, type, message)."""
    doc = _load(body)
    if isinstance(doc, dict) and doc.get("type") == "error":
        return body
    if isinstance(doc, list) and doc:
        doc = doc[0]
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, dict):
        code = str(error.get("status", ""))
        if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            return _CREDENTIALS
        mapped = GOOGLE.get(code) or by_status(status)
        return mapped[0], mapped[1], _message(error) or "The Vertex AI request failed."
    mapped = by_status(status)
    return mapped[0], mapped[1], "The Vertex AI request failed."


def anthropic_error(err_type: str, message: str) -> bytes:
    return json_error({"type": "error", "error": {"type": err_type, "message": message}})


def _load(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except ValueError:
        return None


def _message(source: bytes | dict[str, Any]) -> str:
    doc = _load(source) if isinstance(source, bytes) else source
    if not isinstance(doc, dict):
        return ""
    value = doc.get("message", doc.get("Message"))
    return value[:MESSAGE_MAX] if isinstance(value, str) else ""
