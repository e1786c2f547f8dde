"""Enterprise identity: tokens from external OIDC issuers, verified against their JWKS.

The JWKS is fetched with aiohttp (never blocking the event loop), cached, and
refetched when it is older than `refresh_interval_seconds` or when a token names
an unknown `kid` — at most once per `min_refresh_interval_seconds`, so made-up
kids cannot make the gateway hammer the IdP. When the IdP is down the cached
keys keep verifying (`zdr_gateway_oidc_jwks_stale{issuer} 1`,
`zdr_gateway_oidc_jwks_refreshes_total{outcome="error"}`).
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from hashlib import sha256
from typing import TYPE_CHECKING, Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.auth.grants import principal_for
from gateway.auth.principal import Principal
from gateway.auth.settings import OIDCGrant, OIDCIssuer
from gateway.auth.tokens import Rejected, jwt_errors
from gateway.observe.metrics import Metrics

if TYPE_CHECKING:
    from gateway.auth.jwks import JWKSRegistry

MAX_JWKS_BYTES = 512 * 1024
MAX_JWKS_KEYS = 64
_SAFE_SUBJECT = re.compile(r"^[A-Za-z0-9._@+:-]{1,128}$")
_EC_CURVE = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_LOADERS: dict[str, Callable[[str], object]] = {
    "RSA": RSAAlgorithm.from_jwk,
    "EC": ECAlgorithm.from_jwk,
    "OKP": OKPAlgorithm.from_jwk,
}
PublicKey = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey


@dataclass(frozen=True, slots=True)
class JWK:
    key: PublicKey
    alg: str | None  # the JWK's own `alg`, when the IdP pins one

    def fits(self, alg: str) -> bool:
        if self.alg is not None and self.alg != alg:
            return False
        if alg.startswith(("RS", "PS")):
            return isinstance(self.key, RSAPublicKey)
        if alg in _EC_CURVE:
            return isinstance(self.key, EllipticCurvePublicKey) and (
                self.key.curve.name == _EC_CURVE[alg]
            )
        return alg == "EdDSA" and isinstance(self.key, Ed25519PublicKey | Ed448PublicKey)


def parse_jwks(doc: Any) -> dict[str, JWK]:
    """Signature keys by kid. Raises ValueError when the document is not a JWKS."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: dict[str, JWK] = {}
    for entry in doc["keys"][:MAX_JWKS_KEYS]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        # SECURITY: symmetric (`oct`) keys and anything with private parts are never used.
        if entry.get("use", "sig") != "sig" or "d" in entry or "k" in entry:
            continue
        loader = _LOADERS.get(entry.get("kty", ""))
        if loader is None:
            continue
        try:
            key = loader(json.dumps(entry))
        except (jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            continue
        if isinstance(key, RSAPublicKey) and key.key_size < 2048:
            continue
        if isinstance(key, PublicKey):
            alg = entry.get("alg")
            keys[entry["kid"]] = JWK(key, alg if isinstance(alg, str) else None)
    return keys


class JWKSCache:
    def __init__(
        self,
        settings: OIDCIssuer,
        registry: JWKSRegistry,
        metrics: Metrics,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The session lives on the registry: opened and closed with the app.
        self.settings, self._registry, self._metrics = settings, registry, metrics
        self._ssl, self._clock = ssl_context, clock
        self._keys: dict[str, JWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> JWK | None:
        now = self._clock()
        s = self.settings
        expired = self._fetched_at is None or now - self._fetched_at >= s.refresh_interval_seconds
        if expired and self._may_attempt(now):
            await self.refresh()
        key = self._keys.get(kid)
        if key is None and self._may_attempt(self._clock()):
            await self.refresh()  # rotation at the IdP: a new kid appears before we refetch
            key = self._keys.get(kid)
        return key

    def due(self) -> bool:
        """Time for the periodic refresh (and, after a failure, for the next retry)."""
        now = self._clock()
        s = self.settings
        expired = self._fetched_at is None or now - self._fetched_at >= s.refresh_interval_seconds
        return expired and self._may_attempt(now)

    def _may_attempt(self, now: float) -> bool:
        last = self._attempted_at
        return last is None or now - last >= self.settings.min_refresh_interval_seconds

    async def refresh(self) -> None:
        started = self._clock()
        async with self._lock:
            if self._attempted_at is not None and self._attempted_at >= started:
                return  # another request refreshed while this one waited
            self._attempted_at = self._clock()
            outcome = "ok"
            try:
                self._keys = parse_jwks(await self._fetch())
                self._fetched_at = self._attempted_at
            # ClientError first: a TLS verification failure is also a ValueError.
            except (aiohttp.ClientError, TimeoutError, OSError):
                outcome = "error"
            except ValueError:
                outcome = "invalid"
            name = self.settings.name
            self._metrics.oidc_jwks_refreshes.labels(name, outcome).inc()
            self._metrics.oidc_jwks_stale.labels(name).set(0 if outcome == "ok" else 1)

    async def _fetch(self) -> Any:
        session = self._registry.session
        if session is None or session.closed:
            raise aiohttp.ClientConnectionError("no HTTP session (app not started)")
        timeout = aiohttp.ClientTimeout(total=self.settings.fetch_timeout_seconds)
        async with session.get(
            self.settings.jwks_url, timeout=timeout, ssl=self._ssl if self._ssl else True
        ) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
            body = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("JWKS document too large")
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError("JWKS is not JSON") from None


class OIDCVerifier:
    def __init__(self, settings: OIDCIssuer, cache: JWKSCache, leeway: int) -> None:
        self.settings, self._cache, self._leeway = settings, cache, leeway

    async def verify(self, token: str, now: float) -> Principal:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Rejected("malformed") from None
        alg = header.get("alg")
        # SECURITY: only the issuer's configured asymmetric algorithms; never `none`/HS*.
        if not isinstance(alg, str) or alg not in s.algorithms:
            raise Rejected("bad_algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or len(kid) > 256:
            raise Rejected("unknown_kid")
        jwk = await self._cache.get(kid)
        if jwk is None:
            raise Rejected("unknown_kid")
        if not jwk.fits(alg):
            raise Rejected("bad_algorithm")
        with jwt_errors():
            claims = jwt.decode(
                token,
                jwk.key,
                algorithms=[alg],
                audience=s.audience,
                issuer=s.issuer,
                options={
                    "require": ["iss", "aud", "exp"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
            raise Rejected("bad_claims")
        if isinstance(exp, bool) or isinstance(nbf, bool):
            raise Rejected("bad_claims")
        if now > exp + self._leeway:
            raise Rejected("expired")
        if now + self._leeway < nbf:
            raise Rejected("not_yet_valid")
        subject = claims.get(s.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise Rejected("bad_claims")
        grant = match_grant(s.grants, claims)
        if grant is None:
            raise Rejected("no_grant")
        return principal_for(grant, f"oidc:{s.name}:{safe_subject(subject)}", "oidc", float(exp))


def match_grant(
    grants: tuple[OIDCGrant, ...] | list[OIDCGrant], claims: Mapping[str, Any]
) -> OIDCGrant | None:
    for grant in grants:
        value = claims.get(grant.claim)
        if isinstance(value, str) and (value == grant.value or grant.value in value.split()):
            return grant
        if isinstance(value, list) and grant.value in value:
            return grant
    return None


def safe_subject(subject: str) -> str:
    """The subject as an audit key id: as is when it is short and plain, else a hash."""
    if _SAFE_SUBJECT.match(subject):
        return subject
    return "sha256-" + sha256(subject.encode()).hexdigest()[:24]
