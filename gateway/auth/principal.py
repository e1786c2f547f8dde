"""Who is calling and what they may do: the output of the auth stage."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-key limits carried by the credential; None means "team/config default"."""

    rpm: int | None = None
    input_tpm: int | None = None
    output_tpm: int | None = None
    concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    team: str
    # "key" (gateway-issued), "oidc", "mtls" or "anonymous" (auth disabled).
    source: str
    # Endpoint kinds this principal may call; None = every endpoint the policy allows.
    endpoints: frozenset[str] | None = None
    # Glob patterns of allowed model names; None = any model.
    models: tuple[str, ...] | None = None
    max_tokens: int | None = None
    limits: Limits = field(default_factory=Limits)
    expires_at: float | None = None
    # Upstream target labels this principal is held to (residency), sorted pairs;
    # added to its team's (upstreams[].teams). None = no restriction of its own.
    upstream_labels: tuple[tuple[str, str], ...] | None = None


ANONYMOUS = Principal(key_id="anonymous", team="anonymous", source="anonymous")
