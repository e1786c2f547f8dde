"""Enterprise identity through the real gateway: OIDC tokens from the SDK, client certificates."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import jwt
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer
from anthropic.types import MessageParam
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.auth.auth_helpers import Signer
from tests.conftest import Gateway, StartGateway, Upstream

PROMPT: list[MessageParam] = [{"role": "user", "content": "Hi"}]
ISSUER = "https://login.corp.example/"
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def jwks_url() -> AsyncIterator[str]:
    doc = {"keys": [{**json.loads(RSAAlgorithm.to_jwk(_KEY.public_key())), "kid": "r0"}]}

    async def serve(_: web.Request) -> web.Response:
        return web.json_response(doc)

    app = web.Application()
    app.router.add_get("/jwks", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/jwks"))
    await server.close()


def oidc_token(**claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": "zdr-gateway",
        "sub": "alice",
        "exp": now + 300,
        "groups": ["llm-research"],
        **claims,
    }
    return jwt.encode(body, _KEY, algorithm="RS256", headers={"kid": "r0"})


async def test_oidc_token_from_the_sdk(
    start_gateway: StartGateway, config_dict: dict[str, Any], jwks_url: str, upstream: Upstream
) -> None:
    config_dict["auth"] = {
        "oidc": [
            {
                "name": "corp",
                "issuer": ISSUER,
                "audience": "zdr-gateway",
                "jwks_url": jwks_url,
                "grants": [
                    {
                        "claim": "groups",
                        "value": "llm-research",
                        "team": "research",
                        "models": ["claude-sonnet-*"],
                    }
                ],
            }
        ]
    }
    config_dict["metrics"] = {"teams": ["research"]}
    gw = await start_gateway(config_dict)
    assert gw.sample("zdr_gateway_oidc_jwks_refreshes_total", issuer="corp", outcome="ok") == 1
    for token, ok in [(oidc_token(), True), (oidc_token(iss="https://evil.example/"), False)]:
        client = anthropic.AsyncAnthropic(
            base_url=gw.url,
            api_key=token,
            max_retries=0,
            http_client=anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
        )
        try:
            if ok:
                await client.messages.create(
                    model="claude-sonnet-5-5", max_tokens=8, messages=PROMPT
                )
                with pytest.raises(anthropic.PermissionDeniedError):
                    await client.messages.create(
                        model="claude-opus-5", max_tokens=8, messages=PROMPT
                    )
            else:
                with pytest.raises(anthropic.AuthenticationError):
                    await client.messages.create(
                        model="claude-sonnet-5-5", max_tokens=8, messages=PROMPT
                    )
        finally:
            await client.close()
    labels = {"provider": "anthropic", "route": "messages", "status_class": "2xx", "code": "200"}
    assert gw.sample("zdr_gateway_requests_total", team="research", **labels) == 1
    assert gw.sample("zdr_gateway_auth_failures_total", reason="unknown_issuer") == 1
    seen = upstream.stub.requests[-1]
    assert token not in json.dumps(seen.headers)


@pytest.fixture
def mtls_config(
    config_dict: dict[str, Any], tls_ca: trustme.CA, cert_files: dict[str, str], signer: Signer
) -> dict[str, Any]:
    config_dict["server"]["tls"]["client_ca_file"] = cert_files["ca_file"]
    config_dict["auth"] = {
        "signing_keys": [{"kid": signer.kid, "public_key_file": str(signer.public_path)}],
        "mtls": [
            {
                "id": "batch",
                "team": "data",
                "san_dns": "batch.svc.internal",
                "endpoints": ["messages"],
            }
        ],
    }
    config_dict["metrics"] = {"teams": ["research"]}
    return config_dict


def client_ctx(gw: Gateway, tls_ca: trustme.CA, name: str) -> ssl.SSLContext:
    ctx = gw.client_ssl()
    tls_ca.issue_cert(name).configure_cert(ctx)
    return ctx


async def post(gw: Gateway, ctx: ssl.SSLContext, path: str, headers: dict[str, str]) -> int:
    body = {"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": PROMPT}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + path,
            json=body,
            headers={"anthropic-version": "2023-06-01", **headers},
            ssl=ctx,
        ) as resp,
    ):
        await resp.read()
        return resp.status


async def test_client_certificate_identity(
    start_gateway: StartGateway,
    mtls_config: dict[str, Any],
    tls_ca: trustme.CA,
    signer: Signer,
    tmp_path: Path,
) -> None:
    gw = await start_gateway(mtls_config)
    mapped = client_ctx(gw, tls_ca, "batch.svc.internal")
    unmapped = client_ctx(gw, tls_ca, "someone.svc.internal")
    assert await post(gw, mapped, "/v1/messages", {}) == 200
    assert await post(gw, mapped, "/v1/messages/count_tokens", {}) == 403  # its grant's scope
    assert await post(gw, unmapped, "/v1/messages", {}) == 401
    assert await post(gw, unmapped, "/v1/messages", {"x-api-key": signer.issue_live()}) == 200
    labels = {"provider": "anthropic", "route": "messages", "status_class": "2xx", "code": "200"}
    assert gw.sample("zdr_gateway_requests_total", team="other", **labels) == 1  # "data" undeclared
    assert gw.sample("zdr_gateway_requests_total", team="research", **labels) == 1
