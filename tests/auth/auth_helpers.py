"""Helpers shared by the auth tests (importable: tests/auth is on sys.path)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.auth import tokens
from gateway.auth.keyset import KeySet, load_public_key
from gateway.auth.principal import Limits

NOW = 1_800_000_000  # a fixed clock: 2027-01-15


@dataclasses.dataclass
class Signer:
    kid: str
    private_path: Path
    public_path: Path
    private: Ed25519PrivateKey

    def keyset(self) -> KeySet:
        return KeySet({self.kid: load_public_key(self.public_path)})

    def issue(self, **overrides: Any) -> str:
        return tokens.issue(claims(**overrides), self.private, self.kid)

    def issue_live(self, **overrides: Any) -> str:
        """Valid now by the real clock (for a running gateway)."""
        now = int(time.time())
        times = {"issued_at": now - 60, "not_before": now - 60, "expires_at": now + 3600}
        return self.issue(**{**times, **overrides})


def claims(**overrides: Any) -> tokens.KeyClaims:
    base: dict[str, Any] = {
        "key_id": "app-1",
        "team": "research",
        "issued_at": NOW - 60,
        "not_before": NOW - 60,
        "expires_at": NOW + 3600,
        "endpoints": ("messages", "count_tokens", "models"),
        "models": ("claude-sonnet-*",),
        "max_tokens": 1024,
        "limits": Limits(rpm=60),
    }
    base.update(overrides)
    return tokens.KeyClaims(**base)


def write_config(path: Path, auth: dict[str, Any], **extra: Any) -> Path:
    """A minimal plaintext gateway config with this `auth` section (and extra sections)."""
    cfg: dict[str, Any] = {
        "server": {"tls": {"enabled": False}},
        "upstreams": [
            {
                "name": "anthropic",
                "provider": "anthropic",
                "url": "https://api.anthropic.com",
                "api_key": "sk-test",
            }
        ],
        "auth": auth,
        **extra,
    }
    path.write_text(yaml.safe_dump(cfg))
    return path
