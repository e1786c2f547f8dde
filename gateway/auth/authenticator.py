"""One credential → one `Principal`: gateway keys, OIDC tokens, client certificates.

Built from `AuthSettings` in one go (keys parsed, files read), so a reload
either produces a complete new `Authenticator` or fails and changes nothing.

PyJWT and cryptography (~9 MiB resident) are loaded by `build` when the settings
need them (auth on, signing keys or OIDC issuers listed), at start-up rather than
at the first request; with auth off and nothing listed they are never loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gateway.auth.keyset import KeySet, load_keyset
from gateway.auth.mtls import MTLSMap
from gateway.auth.principal import Principal
from gateway.auth.rejected import MAX_TOKEN_BYTES, PREFIX, Rejected
from gateway.auth.revocation import RedisRevocations, Revocations
from gateway.auth.settings import AuthSettings

if TYPE_CHECKING:
    from gateway.auth.jwks import JWKSRegistry
    from gateway.auth.oidc import OIDCVerifier

# Verified gateway keys kept per Authenticator (only successes are kept: a flood of
# bad tokens cannot fill it, and an attacker cannot make a bad token "verified").
VERIFIED_CACHE_SIZE = 4096


class Authenticator:
    def __init__(
        self,
        settings: AuthSettings,
        keyset: KeySet,
        revoked: Revocations,
        oidc: Mapping[str, OIDCVerifier],
        mtls: MTLSMap,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.keyset, self.revoked = settings, keyset, revoked
        self.oidc, self.mtls, self._clock = dict(oidc), mtls, clock
        # Gateway keys already verified by this Authenticator (one per config load, so a
        # rotation or reload starts empty). A signature check is ~0.1 ms of CPU; a hit
        # costs a dict lookup plus the expiry and revocation checks done on every request.
        self._verified: dict[str, Principal] = {}

    @property
    def clamp(self) -> bool:
        return self.settings.max_tokens_over_ceiling == "clamp"

    async def authenticate(self, credential: str) -> Principal:
        if credential.startswith(PREFIX):
            return self.gateway_key(credential)
        now = self._clock()
        if len(credential) > MAX_TOKEN_BYTES:
            raise Rejected("too_large")
        verifier = self.oidc.get(_unverified_issuer(credential) or "") if self.oidc else None
        if verifier is None:
            raise Rejected("unknown_issuer" if self.oidc else "malformed")
        principal = await verifier.verify(credential, now)
        if principal.key_id in self.revoked:
            raise Rejected("revoked")
        return principal

    def gateway_key(self, credential: str) -> Principal:
        """A gateway-issued key (`zdr_…`): verified without suspending (keys are parsed at
        load), so the auth stage calls it directly, without a coroutine per request."""
        now = self._clock()
        leeway = self.settings.leeway_seconds
        principal = self._verified.get(credential)
        if principal is None:
            from gateway.auth import tokens  # loaded by build() when auth is on

            principal = tokens.verify(credential, self.keyset, now, self.revoked, leeway)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]  # oldest first
            self._verified[credential] = principal
            return principal
        # Not-before held when it was verified and time only moves on; expiry and
        # revocation can change, so they are checked again on every request.
        if principal.expires_at is not None and now > principal.expires_at + leeway:
            del self._verified[credential]
            raise Rejected("expired")
        if principal.key_id in self.revoked:
            raise Rejected("revoked")
        return principal

    def identify_certificate(self, peercert: Mapping[str, Any] | None) -> Principal | None:
        principal = self.mtls.identify(peercert)
        if principal is not None and principal.key_id in self.revoked:
            raise Rejected("revoked")
        return principal


def build(
    settings: AuthSettings,
    jwks: JWKSRegistry,
    remote: RedisRevocations | None = None,
    clock: Callable[[], float] = time.time,
) -> Authenticator:
    """Raises KeyLoadError / ValueError (naming the file) when a key or list cannot be read."""
    if settings.enabled:
        # Every gateway key is verified by `tokens` (PyJWT, cryptography): a broken
        # install of either fails here, at start-up, not at the first request.
        from gateway.auth import tokens  # noqa: F401
    verifiers: dict[str, OIDCVerifier] = {}
    if settings.oidc:
        from gateway.auth.oidc import OIDCVerifier

        verifiers = {
            o.issuer: OIDCVerifier(o, jwks.cache_for(o), settings.leeway_seconds)
            for o in settings.oidc
        }
    return Authenticator(
        settings,
        load_keyset(settings.signing_keys),
        Revocations(settings.revoked, settings.revoked_file, remote),
        verifiers,
        MTLSMap(settings.mtls),
        clock,
    )


def _unverified_issuer(token: str) -> str | None:
    # Only to pick which issuer's keys to verify with; the issuer is verified afterwards.
    import jwt  # loaded with the OIDC verifiers this is only called with

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise Rejected("malformed") from None
    iss = claims.get("iss")
    return iss if isinstance(iss, str) else None
