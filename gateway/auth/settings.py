"""`auth:` config section."""

from __future__ import annotations

from pydantic import Field

from gateway.settings_base import Section


class SigningKey(Section):
    kid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    public_key_file: str


class AuthSettings(Section):
    # false only for local experiments: every request becomes the anonymous principal.
    enabled: bool = True
    signing_keys: list[SigningKey] = []
    revoked: list[str] = []
    oidc: list[dict[str, object]] = []
