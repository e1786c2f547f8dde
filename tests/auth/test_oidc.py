"""OIDC against a local JWKS server started by the test: rotation, IdP down, wrong issuers."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.auth.authenticator import Authenticator, build
from gateway.auth.jwks import JWKSRegistry
from gateway.auth.oidc import parse_jwks
from gateway.auth.settings import AuthSettings, OIDCIssuer
from gateway.auth.tokens import Rejected
from gateway.observe.metrics import Metrics

ISSUER = "https://login.corp.example/"
AUD = "zdr-gateway-prod"
_RSA = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]
_EC = ec.generate_private_key(ec.SECP256R1())


def jwk(private: Any, kid: str) -> dict[str, Any]:
    algo = RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else ECAlgorithm
    d: dict[str, Any] = json.loads(algo.to_jwk(private.public_key()))
    d.update(kid=kid, use="sig")
    return d


@dataclass
class IdP:
    keys: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False
    fetches: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.down:
            return web.Response(status=503)
        return web.json_response({"keys": self.keys})


def token(private: Any, kid: str, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": AUD,
        "sub": "alice",
        "exp": now + 600,
        "iat": now,
        "groups": ["staff", "llm-research"],
    }
    body.update(claims)
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None},
        private,
        algorithm=alg,
        headers={"kid": kid},
    )


def issuer(url: str, **overrides: Any) -> OIDCIssuer:
    base: dict[str, Any] = {
        "name": "corp",
        "issuer": ISSUER,
        "audience": AUD,
        "jwks_url": url,
        "algorithms": ["RS256", "ES256"],
        "min_refresh_interval_seconds": 0,
        "grants": [
            {"claim": "groups", "value": "llm-admins", "team": "platform"},
            {
                "claim": "groups",
                "value": "llm-research",
                "team": "research",
                "models": ["claude-sonnet-*"],
                "max_tokens": 2048,
                "rpm": 30,
            },
            {"claim": "scope", "value": "llm.use", "team": "apps"},
        ],
    }
    base.update(overrides)
    return OIDCIssuer.model_validate(base)


@dataclass
class Env:
    idp: IdP
    url: str
    metrics: Metrics
    registry: JWKSRegistry

    def auth(self, **overrides: Any) -> Authenticator:
        return build(AuthSettings(oidc=[issuer(self.url, **overrides)]), self.registry)

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    idp = IdP(keys=[jwk(_RSA[0], "r0"), jwk(_EC, "e0")])
    app = web.Application()
    app.router.add_get("/jwks", idp.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    metrics = Metrics()
    async with aiohttp.ClientSession() as session:
        yield Env(idp, str(server.make_url("/jwks")), metrics, JWKSRegistry(metrics, session))
    await server.close()


async def test_valid_token_maps_claims_to_team_and_scopes(env: Env) -> None:
    p = await env.auth().authenticate(token(_RSA[0], "r0"))
    assert (p.key_id, p.team, p.source) == ("oidc:corp:alice", "research", "oidc")
    assert p.models == ("claude-sonnet-*",)
    assert (p.max_tokens, p.limits.rpm) == (2048, 30)
    ec_p = await env.auth().authenticate(
        token(_EC, "e0", "ES256", groups=None, scope="openid llm.use")
    )
    assert ec_p.team == "apps"


async def test_key_rotation_at_the_idp_is_picked_up(env: Env) -> None:
    auth = env.auth()
    await auth.authenticate(token(_RSA[0], "r0"))
    env.idp.keys = [jwk(_RSA[1], "r1")]  # the IdP rotates: r0 gone, r1 new
    p = await auth.authenticate(token(_RSA[1], "r1"))
    assert p.team == "research"
    assert env.sample("zdr_gateway_oidc_jwks_refreshes_total", issuer="corp", outcome="ok") == 2


async def test_unknown_kid_refetch_is_rate_limited(env: Env) -> None:
    auth = env.auth(min_refresh_interval_seconds=30)
    await auth.authenticate(token(_RSA[0], "r0"))
    assert env.idp.fetches == 1
    for _ in range(5):
        with pytest.raises(Rejected, match="unknown_kid"):
            await auth.authenticate(token(_RSA[1], "made-up"))
    assert env.idp.fetches == 1  # no refetch within min_refresh_interval


async def test_idp_down_cached_keys_still_verify(env: Env) -> None:
    auth = env.auth(refresh_interval_seconds=1)
    await auth.authenticate(token(_RSA[0], "r0"))
    env.idp.down = True
    cache = env.registry.caches()[0]
    cache._fetched_at = -1e9  # the cache is due for its periodic refresh
    p = await auth.authenticate(token(_RSA[0], "r0"))
    assert p.team == "research"
    assert env.idp.fetches == 2
    assert env.sample("zdr_gateway_oidc_jwks_refreshes_total", issuer="corp", outcome="error") == 1
    assert env.sample("zdr_gateway_oidc_jwks_stale", issuer="corp") == 1
    env.idp.down = False
    cache._fetched_at = -1e9
    await auth.authenticate(token(_RSA[0], "r0"))
    assert env.sample("zdr_gateway_oidc_jwks_stale", issuer="corp") == 0


async def test_token_from_an_issuer_not_configured_is_refused(env: Env) -> None:
    with pytest.raises(Rejected, match="unknown_issuer"):
        await env.auth().authenticate(token(_RSA[0], "r0", iss="https://evil.example/"))
    assert env.idp.fetches == 0  # not even a JWKS fetch for an unknown issuer


def _hs256_with_rsa_public_key() -> str:
    pem = (
        _RSA[0]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": "r0"}).encode())
    payload = jwt.utils.base64url_encode(
        json.dumps(
            {
                "iss": ISSUER,
                "aud": AUD,
                "sub": "x",
                "exp": int(time.time()) + 60,
                "groups": ["llm-admins"],
            }
        ).encode()
    )
    signing_input = header + b"." + payload
    sig = jwt.utils.base64url_encode(hmac.new(pem, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + sig).decode()


ATTACKS = [
    (
        "alg none",
        lambda: jwt.encode(
            {"iss": ISSUER, "aud": AUD, "sub": "x", "exp": 2**31},
            None,  # type: ignore[arg-type]  # alg "none" takes no key; PyJWT's types demand one
            algorithm="none",
            headers={"kid": "r0"},
        ),
        "bad_algorithm",
    ),
    ("HS256 with the IdP public key", _hs256_with_rsa_public_key, "bad_algorithm"),
    ("ES256 header on an RSA kid", lambda: token(_EC, "r0", "ES256"), "bad_algorithm"),
    ("RS384 not configured", lambda: token(_RSA[0], "r0", "RS384"), "bad_algorithm"),
    ("expired", lambda: token(_RSA[0], "r0", exp=int(time.time()) - 3600), "expired"),
    ("not yet valid", lambda: token(_RSA[0], "r0", nbf=int(time.time()) + 3600), "not_yet_valid"),
    ("wrong audience", lambda: token(_RSA[0], "r0", aud="other-app"), "wrong_audience"),
    ("no exp", lambda: token(_RSA[0], "r0", exp=None), "malformed"),
    ("no grant", lambda: token(_RSA[0], "r0", groups=["staff"]), "no_grant"),
    ("signed by another key", lambda: token(_RSA[1], "r0"), "bad_signature"),
    ("oversized", lambda: token(_RSA[0], "r0", pad="x" * 7000), "too_large"),
]


@pytest.mark.parametrize(("make", "reason"), [a[1:] for a in ATTACKS], ids=[a[0] for a in ATTACKS])
async def test_oidc_attacks(env: Env, make: Any, reason: str) -> None:
    with pytest.raises(Rejected) as exc:
        await env.auth().authenticate(make())
    assert exc.value.reason == reason


async def test_revoked_oidc_subject(env: Env) -> None:
    settings = AuthSettings(oidc=[issuer(env.url)], revoked=["oidc:corp:alice"])
    with pytest.raises(Rejected, match="revoked"):
        await build(settings, env.registry).authenticate(token(_RSA[0], "r0"))


def test_jwks_parsing_skips_dangerous_keys() -> None:
    rsa_small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private_jwk = json.loads(RSAAlgorithm.to_jwk(_RSA[0]))  # includes "d"
    doc = {
        "keys": [
            jwk(_RSA[0], "good"),
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {**private_jwk, "kid": "private"},
            {**jwk(_RSA[1], "enc"), "use": "enc"},
            jwk(rsa_small, "small"),
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "not a dict",
        ]
    }
    assert list(parse_jwks(doc)) == ["good"]
    with pytest.raises(ValueError, match="not a JWKS"):
        parse_jwks({"keys": "nope"})


def test_symmetric_algorithms_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="algorithms"):
        issuer("http://x/jwks", algorithms=["HS256"])
    with pytest.raises(ValueError, match="reserved"):
        AuthSettings(oidc=[issuer("http://x/jwks", issuer="zdr-gateway")])


async def test_jwks_over_tls_with_a_private_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "idp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    idp = IdP(keys=[jwk(_RSA[0], "r0")])
    app = web.Application()
    app.router.add_get("/jwks", idp.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    metrics = Metrics()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"https://localhost:{port}/jwks"
            trusted = build(
                AuthSettings(oidc=[issuer(url, ca_file=str(ca_file))]),
                JWKSRegistry(metrics, session),
            )
            assert (await trusted.authenticate(token(_RSA[0], "r0"))).team == "research"
            untrusted = build(
                AuthSettings(oidc=[issuer(url, name="other")]), JWKSRegistry(metrics, session)
            )
            with pytest.raises(Rejected, match="unknown_kid"):
                await untrusted.authenticate(token(_RSA[0], "r0"))
    finally:
        await runner.cleanup()
    labels = {"issuer": "other", "outcome": "error"}
    errors = metrics.registry.get_sample_value("zdr_gateway_oidc_jwks_refreshes_total", labels)
    assert errors is not None
    assert errors >= 1


async def test_recovery_after_an_outage_shows_without_any_token(env: Env) -> None:
    auth = env.auth(refresh_interval_seconds=1)
    await auth.authenticate(token(_RSA[0], "r0"))
    cache = env.registry.caches()[0]
    env.idp.down = True
    cache._fetched_at = -1e9  # due
    await env.registry.refresh_due()
    assert env.sample("zdr_gateway_oidc_jwks_stale", issuer="corp") == 1
    env.idp.down = False
    await env.registry.refresh_due()  # the background refresher's step: no request involved
    assert env.sample("zdr_gateway_oidc_jwks_stale", issuer="corp") == 0
    fetches = env.idp.fetches
    await env.registry.refresh_due()  # fresh now: nothing is due
    assert env.idp.fetches == fetches
