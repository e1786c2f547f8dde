"""`auth:` config section: signing keys, revocation, OIDC issuers, mTLS identities.

Every option is validated here, at load time, so that a bad value never
surfaces at request time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.routing.settings import check_labels
from gateway.settings_base import Section

# Key ids, team names, grant ids: short, label-safe identifiers.
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
# SECURITY: asymmetric algorithms only. A symmetric algorithm (HS*) would let anyone
# holding the IdP's *public* key mint tokens (key confusion), and `none` needs no key.
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
Algorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]


class SigningKey(Section):
    kid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    public_key_file: str


class Grant(Section):
    """What an identity may do; the same shape for OIDC grants and mTLS identities.

    `None` means "not restricted by the credential" (the policy still applies).
    """

    team: str = Field(pattern=ID_PATTERN)
    endpoints: list[str] | None = None
    models: list[str] | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    rpm: int | None = Field(default=None, gt=0)
    input_tpm: int | None = Field(default=None, gt=0)
    output_tpm: int | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, gt=0)
    # Upstream target labels the identity is held to (residency), e.g. {region: eu}.
    upstream_labels: dict[str, str] | None = None

    @field_validator("upstream_labels")
    @classmethod
    def _labels(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return None if v is None else check_labels(v)


class OIDCGrant(Grant):
    # The grant applies when `claim` in the token equals `value` or (list / space-separated
    # string claim, as `groups` and `scope` usually are) contains it. First match wins.
    claim: str = Field(min_length=1, max_length=64)
    value: str = Field(min_length=1, max_length=256)


class OIDCIssuer(Section):
    # Short name: the `issuer` label of the JWKS metrics (bounded: it comes from config).
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    jwks_url: str = Field(pattern=r"^https?://\S+$")
    algorithms: list[Algorithm] = Field(default=["RS256"], min_length=1)
    # Extra CA bundle for the IdP's TLS certificate.
    ca_file: str | None = None
    # Claim that names the caller (audit `key_id` becomes `oidc:<name>:<value>`).
    subject_claim: str = "sub"
    grants: list[OIDCGrant] = Field(min_length=1)
    # Keys are refetched this often even when nothing is unknown.
    refresh_interval_seconds: float = Field(default=300.0, ge=1, le=86400)
    # An unknown `kid` triggers a refetch at most this often (an attacker cannot make the
    # gateway hammer the IdP with made-up kids).
    min_refresh_interval_seconds: float = Field(default=30.0, ge=0, le=3600)
    fetch_timeout_seconds: float = Field(default=5.0, gt=0, le=60)


class MTLSIdentity(Grant):
    """A client certificate that maps to a principal. Exactly one matcher must be set."""

    id: str = Field(pattern=ID_PATTERN)
    subject_cn: str | None = None
    san_dns: str | None = None
    san_uri: str | None = None
    san_email: str | None = None

    @model_validator(mode="after")
    def _one_matcher(self) -> MTLSIdentity:
        set_ = [m for m in (self.subject_cn, self.san_dns, self.san_uri, self.san_email) if m]
        if len(set_) != 1:
            raise ValueError("set exactly one of subject_cn, san_dns, san_uri, san_email")
        return self


class AuthSettings(Section):
    # false only for local experiments: every request becomes the anonymous principal.
    enabled: bool = True
    signing_keys: list[SigningKey] = []
    # Revoked key ids (`jti`). Re-read on SIGHUP and when the config file changes.
    revoked: list[str] = []
    # Optional file of revoked key ids, one per line (`#` comments), watched for changes;
    # `zdr-gateway keys revoke` appends to it when Redis is not configured.
    revoked_file: str | None = None
    # Redis set of revoked key ids, used when `ratelimit.backend: redis`.
    revoked_redis_key: str = Field(default="zdr-gateway:revoked", min_length=1)
    # Clock skew tolerated on exp/nbf, seconds.
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    # A request whose max_tokens exceeds the credential's ceiling: refuse (403) or clamp.
    max_tokens_over_ceiling: Literal["refuse", "clamp"] = "refuse"
    oidc: list[OIDCIssuer] = []
    # Client-certificate identities, used when server.tls.client_ca_file is set and the
    # request carries no key.
    mtls: list[MTLSIdentity] = []

    @model_validator(mode="after")
    def _unique(self) -> AuthSettings:
        kids = [k.kid for k in self.signing_keys]
        if len(set(kids)) != len(kids):
            raise ValueError("signing_keys: each kid must be unique")
        names = [o.name for o in self.oidc]
        issuers = [o.issuer for o in self.oidc]
        if len(set(names)) != len(names) or len(set(issuers)) != len(issuers):
            raise ValueError("oidc: each name and each issuer must be unique")
        if any(i == "zdr-gateway" for i in issuers):
            raise ValueError("oidc: issuer `zdr-gateway` is reserved for gateway-issued keys")
        ids = [m.id for m in self.mtls]
        if len(set(ids)) != len(ids):
            raise ValueError("mtls: each id must be unique")
        return self
