"""A real scoped key for `zdr-gateway demo`: a fresh in-memory signing key, never on disk."""

from __future__ import annotations

import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.auth import tokens
from gateway.auth.principal import Limits

KID = "demo"


@dataclass(frozen=True)
class DemoKey:
    public_pem: bytes
    key: str
    claims: tokens.KeyClaims

    def describe(self) -> str:
        c = self.claims
        return (
            f"key id {c.key_id}, team {c.team}, endpoints {','.join(c.endpoints or ())}, "
            f"models {','.join(c.models or ())}, max_tokens ≤ {c.max_tokens}, "
            f"{c.limits.rpm} requests/min, expires in 1h"
        )


def issue_demo_key(model_pattern: str = "claude-sonnet-*") -> DemoKey:
    signing = Ed25519PrivateKey.generate()
    now = int(time.time())
    claims = tokens.KeyClaims(
        key_id="demo-key-1",
        team="demo",
        issued_at=now,
        not_before=now,
        expires_at=now + 3600,
        endpoints=("messages", "count_tokens", "models"),
        models=(model_pattern,),
        max_tokens=1024,
        limits=Limits(rpm=60, concurrency=4),
    )
    public_pem = signing.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DemoKey(public_pem, tokens.issue(claims, signing, KID), claims)
