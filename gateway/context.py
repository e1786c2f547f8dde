"""What the stages learn about one request: `RequestContext`, and the `Usage` read from
the provider's answer. No aiohttp here, so that audit and other domain modules can use
them without the web framework."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

if TYPE_CHECKING:
    from gateway.auth.principal import Principal
    from gateway.routing.router import Route


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def by_kind(self) -> dict[str, int]:
        """Token counts keyed by the bounded `kind` label used in metrics and audit."""
        return {
            "input": self.input_tokens,
            "output": self.output_tokens,
            "cache_creation": self.cache_creation_input_tokens,
            "cache_read": self.cache_read_input_tokens,
        }


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
    body: bytes | bytearray = b""
    # Body bytes reserved in the process's budget (serve/load.py), given back once.
    held_bytes: int = 0
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
    # The pool target of the last attempt (its config name) and the attempts made.
    target: str | None = None
    attempts: int = 0
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
