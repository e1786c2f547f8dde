"""Config-declared grants (OIDC, mTLS) become principals with the same scopes as a key."""

from __future__ import annotations

from gateway.auth.principal import Limits, Principal
from gateway.auth.settings import Grant


def principal_for(
    grant: Grant, key_id: str, source: str, expires_at: float | None = None
) -> Principal:
    return Principal(
        key_id=key_id,
        team=grant.team,
        source=source,
        endpoints=frozenset(grant.endpoints) if grant.endpoints is not None else None,
        models=tuple(grant.models) if grant.models is not None else None,
        max_tokens=grant.max_tokens,
        limits=Limits(
            rpm=grant.rpm,
            input_tpm=grant.input_tpm,
            output_tpm=grant.output_tpm,
            concurrency=grant.concurrency,
        ),
        expires_at=expires_at,
        upstream_labels=(
            tuple(sorted(grant.upstream_labels.items())) if grant.upstream_labels else None
        ),
    )
