"""Claude Code's probe and telemetry are answered by the gateway; anthropic-* headers pass;
`POST /v1/messages?beta=true` is served like /v1/messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import StartGateway, Upstream
from tests.support import audit as support_audit

CANARY = "CANARY-telemetry-5d1e"
BODY = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.mark.parametrize("prefix", ["", "/anthropic"])
async def test_probe_and_telemetry_answered_here_never_forwarded(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    upstream: Upstream,
    tmp_path: Path,
    prefix: str,
) -> None:
    audit = tmp_path / "audit"
    config_dict["upstreams"][0]["prefix"] = prefix
    config_dict["audit"] = support_audit.file_sink(audit)
    gw = await start_gateway(config_dict)
    base = gw.url + prefix
    payload = json.dumps({"events": [{"prompt": CANARY}] * 2000}).encode()
    async with aiohttp.ClientSession() as http:
        for path in [prefix or "/", prefix + "/", prefix + "/api/hello"]:
            async with http.head(gw.url + path, ssl=gw.client_ssl()) as r:
                assert r.status == 200
                assert r.headers["x-gateway-request-id"].startswith("gw_")
        for path in ("/api/event_logging/batch", "/api/event_logging/v2/batch"):
            async with http.post(
                base + path,
                data=payload,
                headers={"content-type": "application/json", "x-api-key": CANARY},
                ssl=gw.client_ssl(),
            ) as r:
                assert r.status == 200
                assert await r.json() == {}
        # The connection stays usable after an unread body.
        async with http.post(base + "/v1/messages", json=BODY, ssl=gw.client_ssl()) as r:
            assert r.status == 200
    assert [s.path for s in upstream.stub.requests] == ["/v1/messages"]
    assert (
        gw.sample(
            "zdr_gateway_requests_total",
            provider="anthropic",
            route="telemetry",
            status_class="2xx",
            code="200",
            team="none",
        )
        == 2.0
    )
    text = support_audit.text(audit)
    assert CANARY not in text
    kinds = [json.loads(line)["endpoint"] for line in text.splitlines()]
    assert kinds.count("probe") == 3
    assert kinds.count("telemetry") == 2


async def test_anthropic_headers_forwarded_credentials_never(
    start_gateway: StartGateway, config_dict: dict[str, Any], upstream: Upstream
) -> None:
    gw = await start_gateway(config_dict)
    headers = {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219",
        "anthropic-dangerous-direct-browser-access": "true",
        "anthropic-future-header": "1",
        "x-api-key": "client-secret",
        "authorization": "Bearer client-secret",
        "x-app": "cli",
        "x-stainless-lang": "js",
        "connection": "keep-alive, anthropic-hop",
        "anthropic-hop": "listed in Connection: hop-by-hop",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + "/v1/messages?beta=true", json=BODY, headers=headers, ssl=gw.client_ssl()
        ) as r,
    ):
        assert r.status == 200
    seen = upstream.stub.requests[-1]
    assert seen.path == "/v1/messages"
    assert seen.query == "beta=true"
    sent = {k.lower(): v for k, v in seen.headers.items()}
    for name in (
        "anthropic-version",
        "anthropic-beta",
        "anthropic-dangerous-direct-browser-access",
        "anthropic-future-header",
    ):
        assert sent[name] == headers[name]
    assert sent["x-api-key"] == upstream.stub.api_key  # the upstream's, not the client's
    assert "authorization" not in sent
    assert "anthropic-hop" not in sent
    assert "client-secret" not in repr(seen)
