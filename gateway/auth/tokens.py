"""Gateway-issued scoped keys: signed JWTs (EdDSA / Ed25519), verified with no database.

A key is `zdr_` + a compact JWS. The prefix lets secret scanners and humans
recognise a gateway key; the JWS carries the scopes, so every replica can
verify it from the public keys in its config alone.

`verify` is the hot path: the token length is bounded before anything is
parsed, the algorithm list is fixed (EdDSA only), `kid` is required and must
name a configured key, and issuer/audience are fixed by the gateway.
Every refusal raises `Rejected` with a bounded reason (a metric label), never
the token or its text.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.auth.keyset import KeySet
from gateway.auth.principal import Limits, Principal

# Re-exported under the names importers have always used (`tokens.Rejected`, ...).
from gateway.auth.rejected import MAX_TOKEN_BYTES as MAX_TOKEN_BYTES
from gateway.auth.rejected import PREFIX as PREFIX
from gateway.auth.rejected import Rejected as Rejected

ISSUER = "zdr-gateway"
AUDIENCE = "zdr-gateway"
ALGORITHM = "EdDSA"
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_MODEL_GLOB = re.compile(r"^[A-Za-z0-9._:@*?\[\]-]{1,128}$")
_MAX_LIST = 64
# A compact JWS: three base64url segments (an empty signature is refused by alg below).
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_LIMIT_KEYS = ("rpm", "input_tpm", "output_tpm", "concurrency")
# Upstream target labels (residency): the same charset as gateway/routing/settings.py.
_LABEL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_MAX_LABELS = 16


@dataclass(frozen=True, slots=True)
class KeyClaims:
    key_id: str
    team: str
    issued_at: int
    not_before: int
    expires_at: int | None
    endpoints: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    max_tokens: int | None = None
    limits: Limits = field(default_factory=Limits)
    # Sorted (label, value) pairs: the key reaches only upstream targets carrying them all.
    upstream_labels: tuple[tuple[str, str], ...] | None = None

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "jti": self.key_id,
            "team": self.team,
            "iat": self.issued_at,
            "nbf": self.not_before,
        }
        if self.expires_at is not None:
            body["exp"] = self.expires_at
        if self.endpoints is not None:
            body["endpoints"] = list(self.endpoints)
        if self.models is not None:
            body["models"] = list(self.models)
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        limits = {k: getattr(self.limits, k) for k in _LIMIT_KEYS if getattr(self.limits, k)}
        if limits:
            body["limits"] = limits
        if self.upstream_labels is not None:
            body["upstream_labels"] = dict(self.upstream_labels)
        return body


def issue(claims: KeyClaims, private_key: Ed25519PrivateKey, kid: str) -> str:
    validate_payload(claims.payload())  # never sign something verify() would refuse
    token = jwt.encode(claims.payload(), private_key, algorithm=ALGORITHM, headers={"kid": kid})
    if len(token) + len(PREFIX) > MAX_TOKEN_BYTES:
        raise ValueError("the key would exceed the maximum key size; use fewer models/endpoints")
    return PREFIX + token


def split(credential: str) -> str:
    """The JWS inside a gateway key; raises Rejected when it is not one."""
    if len(credential) > MAX_TOKEN_BYTES:
        raise Rejected("too_large")
    if not credential.startswith(PREFIX):
        raise Rejected("malformed")
    return credential[len(PREFIX) :]


def verify(
    credential: str, keyset: KeySet, now: float, revoked: Container[str], leeway: int = 30
) -> Principal:
    token = split(credential)
    header = _header(token)
    # SECURITY: the algorithm is fixed by the gateway, never chosen by the token
    # (refuses `none`, and HS256 signed with the public key as an HMAC secret).
    if header.get("alg") != ALGORITHM:
        raise Rejected("bad_algorithm")
    kid = header.get("kid")
    key = keyset.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise Rejected("unknown_kid")  # also a retired key: its public key left the config
    with jwt_errors():
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            # Time claims are checked below against the injected clock (one source of
            # truth, deterministic in tests); their types are checked by validate_payload.
            options={
                "require": ["iss", "aud", "jti", "iat", "nbf"],
                "strict_aud": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    claims = validate_payload(payload)
    if claims.expires_at is not None and now > claims.expires_at + leeway:
        raise Rejected("expired")
    if now + leeway < claims.not_before:
        raise Rejected("not_yet_valid")
    if claims.key_id in revoked:
        raise Rejected("revoked")
    return Principal(
        key_id=claims.key_id,
        team=claims.team,
        source="key",
        endpoints=frozenset(claims.endpoints) if claims.endpoints is not None else None,
        models=claims.models,
        max_tokens=claims.max_tokens,
        limits=claims.limits,
        expires_at=float(claims.expires_at) if claims.expires_at is not None else None,
        upstream_labels=claims.upstream_labels,
    )


@contextmanager
def jwt_errors() -> Iterator[None]:
    """PyJWT's exceptions as bounded `Rejected` reasons (their text is never kept)."""
    try:
        yield
    except jwt.InvalidAudienceError:
        raise Rejected("wrong_audience") from None
    except jwt.InvalidIssuerError:
        raise Rejected("wrong_issuer") from None
    except jwt.InvalidSignatureError:
        raise Rejected("bad_signature") from None
    except jwt.InvalidTokenError:
        raise Rejected("malformed") from None


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, parsed cheaply: the shape is checked with one C-speed regex
    (PyJWT's own header parse scans the whole token in Python, ~2x the cost of the
    Ed25519 check itself). PyJWT still validates everything again in `decode`."""
    if not _COMPACT.fullmatch(token):
        raise Rejected("malformed")
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        raise Rejected("malformed") from None
    if not isinstance(header, dict):
        raise Rejected("malformed")
    return header


def validate_payload(p: dict[str, Any]) -> KeyClaims:
    """Typed claims from a payload; raises Rejected("bad_claims") on any unexpected shape."""
    try:
        limits = p.get("limits", {})
        if not isinstance(limits, dict) or set(limits) - set(_LIMIT_KEYS):
            raise ValueError
        return KeyClaims(
            key_id=_ident(p["jti"]),
            team=_ident(p["team"]),
            issued_at=_int(p["iat"]),
            not_before=_int(p["nbf"]),
            expires_at=_int(p["exp"]) if "exp" in p else None,
            endpoints=_strings(p["endpoints"], _ID) if "endpoints" in p else None,
            models=_strings(p["models"], _MODEL_GLOB) if "models" in p else None,
            max_tokens=_positive(p["max_tokens"]) if "max_tokens" in p else None,
            limits=Limits(**{k: _positive(v) for k, v in limits.items()}),
            upstream_labels=_labels(p["upstream_labels"]) if "upstream_labels" in p else None,
        )
    except (KeyError, TypeError, ValueError):
        raise Rejected("bad_claims") from None


def _ident(v: object) -> str:
    if not isinstance(v, str) or not _ID.match(v):
        raise ValueError
    return v


def _int(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError
    return v


def _positive(v: object) -> int:
    n = _int(v)
    if n <= 0:
        raise ValueError
    return n


def _labels(v: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(v, dict) or not 0 < len(v) <= _MAX_LABELS:
        raise ValueError
    for k, value in v.items():
        if not isinstance(value, str) or not _LABEL.match(k) or not _LABEL.match(value):
            raise ValueError
    return tuple(sorted(v.items()))


def _strings(v: object, pattern: re.Pattern[str]) -> tuple[str, ...]:
    if not isinstance(v, list) or len(v) > _MAX_LIST:
        raise ValueError
    if not all(isinstance(s, str) and pattern.match(s) for s in v):
        raise ValueError
    return tuple(v)
