"""Gateway keys: issue/verify round trip and the table of attacks, each refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from gateway.auth import tokens
from gateway.auth.keyset import KeySet
from gateway.auth.principal import Limits
from gateway.auth.tokens import Rejected, verify
from tests.auth.auth_helpers import NOW, Signer, claims


def test_round_trip_gives_the_scoped_principal(signer: Signer) -> None:
    key = signer.issue()
    assert key.startswith("zdr_")
    p = verify(key, signer.keyset(), NOW, set())
    assert (p.key_id, p.team, p.source) == ("app-1", "research", "key")
    assert p.endpoints == frozenset({"messages", "count_tokens", "models"})
    assert p.models == ("claude-sonnet-*",)
    assert p.max_tokens == 1024
    assert p.limits == Limits(rpm=60)
    assert p.expires_at == NOW + 3600


def test_unrestricted_claims_stay_none(signer: Signer) -> None:
    key = signer.issue(endpoints=None, models=None, max_tokens=None, expires_at=None)
    p = verify(key, signer.keyset(), NOW + 10**8, set())
    assert p.endpoints is None
    assert p.models is None
    assert p.max_tokens is None
    assert p.expires_at is None


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _alg_none(s: Signer) -> str:
    header = {"alg": "none", "kid": s.kid, "typ": "JWT"}
    return "zdr_" + _b64(header) + "." + _b64(claims().payload()) + "."


def _hs256_with_public_key(s: Signer) -> str:
    # Key confusion: the attacker knows the public key and uses it as an HMAC secret.
    secret = s.public_path.read_bytes()
    import hashlib
    import hmac

    signing_input = (
        _b64({"alg": "HS256", "kid": s.kid, "typ": "JWT"}) + "." + _b64(claims().payload())
    )
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return "zdr_" + signing_input + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def _tampered(s: Signer) -> str:
    head, _payload, sig = s.issue().removeprefix("zdr_").split(".")
    richer = claims(team="finance", max_tokens=10**6).payload()
    return "zdr_" + head + "." + _b64(richer) + "." + sig


def _raw(s: Signer, payload: dict[str, object], headers: dict[str, object] | None = None) -> str:
    return "zdr_" + jwt.encode(payload, s.private, algorithm="EdDSA", headers=headers)


def _wrong(field: str, value: object) -> Callable[[Signer], str]:
    def make(s: Signer) -> str:
        payload = claims().payload()
        payload[field] = value
        return _raw(s, payload, {"kid": s.kid})

    return make


def _no_kid(s: Signer) -> str:
    return _raw(s, claims().payload())


def _oversized(s: Signer) -> str:
    return "zdr_" + "A" * (tokens.MAX_TOKEN_BYTES + 1)


ATTACKS: list[tuple[str, Callable[[Signer], str], str]] = [
    ("alg none", _alg_none, "bad_algorithm"),
    ("HS256 with the public key as secret", _hs256_with_public_key, "bad_algorithm"),
    ("expired", lambda s: s.issue(expires_at=NOW - 3600), "expired"),
    ("not yet valid", lambda s: s.issue(not_before=NOW + 3600), "not_yet_valid"),
    ("wrong audience", _wrong("aud", "someone-else"), "wrong_audience"),
    ("audience list", _wrong("aud", ["zdr-gateway", "other"]), "wrong_audience"),
    ("wrong issuer", _wrong("iss", "evil"), "wrong_issuer"),
    ("unknown kid", lambda s: tokens.issue(claims(), s.private, "nope"), "unknown_kid"),
    ("no kid", _no_kid, "unknown_kid"),
    ("tampered payload", _tampered, "bad_signature"),
    ("revoked", lambda s: s.issue(key_id="revoked-1"), "revoked"),
    ("oversized token", _oversized, "too_large"),
    ("not a gateway key", lambda s: s.issue().removeprefix("zdr_"), "malformed"),
    ("garbage", lambda s: "zdr_not.a.jwt", "malformed"),
    ("team with newline", _wrong("team", "a\nb"), "bad_claims"),
    ("max_tokens as string", _wrong("max_tokens", "1000"), "bad_claims"),
    ("exp as bool", _wrong("exp", True), "bad_claims"),
    ("unknown limit", _wrong("limits", {"bogus": 1}), "bad_claims"),
]


@pytest.mark.parametrize(("make", "reason"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
def test_attack_is_refused(signer: Signer, make: Callable[[Signer], str], reason: str) -> None:
    with pytest.raises(Rejected) as exc:
        verify(make(signer), signer.keyset(), NOW, {"revoked-1"})
    assert exc.value.reason == reason


def test_retired_key_stops_working_when_its_public_key_leaves(
    signer: Signer, other_signer: Signer
) -> None:
    old, new = signer.issue(), other_signer.issue()
    both = KeySet({**signer.keyset(), **other_signer.keyset()})
    assert verify(old, both, NOW, set()).key_id == "app-1"
    assert verify(new, both, NOW, set()).key_id == "app-1"
    rotated = other_signer.keyset()
    with pytest.raises(Rejected, match="unknown_kid"):
        verify(old, rotated, NOW, set())
    assert verify(new, rotated, NOW, set()).key_id == "app-1"


def test_signature_from_another_key_under_a_known_kid(signer: Signer, other_signer: Signer) -> None:
    forged = tokens.issue(claims(), other_signer.private, signer.kid)
    with pytest.raises(Rejected, match="bad_signature"):
        verify(forged, signer.keyset(), NOW, set())


def test_leeway_tolerates_small_clock_skew(signer: Signer) -> None:
    key = signer.issue(not_before=NOW + 10, expires_at=NOW - 10)
    assert verify(key, signer.keyset(), NOW, set(), leeway=30).key_id == "app-1"
    with pytest.raises(Rejected):
        verify(key, signer.keyset(), NOW, set(), leeway=0)


def test_issue_refuses_claims_verify_would_refuse(signer: Signer) -> None:
    with pytest.raises(Rejected):
        signer.issue(key_id="has space")


def test_rejection_carries_no_token_text(signer: Signer) -> None:
    key = signer.issue(expires_at=NOW - 3600)
    with pytest.raises(Rejected) as exc:
        verify(key, signer.keyset(), NOW, set())
    assert str(exc.value) == "expired"
    assert key[10:30] not in repr(exc.value)


def test_public_key_is_parsed_once(signer: Signer) -> None:
    ks = signer.keyset()
    loaded = ks[signer.kid]
    assert not isinstance(loaded, bytes | str)
    assert isinstance(
        loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw), bytes
    )
    verify(signer.issue(), ks, NOW, set())
    assert ks[signer.kid] is loaded
