"""Claude on Vertex AI through the gateway: the official SDK in front, the stand-in behind,
OAuth2 tokens from a service-account file whose token_uri is the stand-in's own."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from aiohttp import web
from anthropic.types import MessageParam

from gateway.config import ConfigError, parse
from tests.conftest import SpawnGateway, StartGateway
from tests.providers.conftest import VERTEX_SONNET, VertexUpstream, sdk, serve
from tests.support.vertex_standin import VertexStandIn

PROMPT: list[MessageParam] = [{"role": "user", "content": "Hi"}]
BETA = "context-1m-2025-08-07"
MODELS = "/v1/projects/standin-project/locations/europe-west4/publishers/anthropic/models"


async def test_sdk_create_stream_count(
    vertex: tuple[VertexStandIn, Path],
    vertex_upstream: VertexUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
) -> None:
    standin, _ = vertex
    config_dict["upstreams"] = [vertex_upstream()]
    gw = await start_gateway(config_dict)
    client = sdk(gw)
    msg = await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
    async with client.messages.stream(
        model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT,
        extra_headers={"anthropic-beta": BETA},
    ) as stream:  # fmt: skip
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    count = await client.messages.count_tokens(model="claude-sonnet-4-5", messages=PROMPT)
    await client.close()
    assert msg.content[0].type == "text"
    assert msg.content[0].text == standin.reply
    assert text == standin.reply
    assert count.input_tokens > 0
    created, streamed, counted = standin.seen
    assert created.path == f"{MODELS}/{VERTEX_SONNET}:rawPredict"
    assert streamed.path == f"{MODELS}/{VERTEX_SONNET}:streamRawPredict"
    assert counted.path == f"{MODELS}/count-tokens:rawPredict"
    assert streamed.headers["anthropic-beta"] == BETA  # betas stay in the header on Vertex
    assert "x-api-key" not in streamed.headers
    assert streamed.headers["Authorization"] == "Bearer ya29.standin-1"
    assert json.loads(counted.body)["model"] == VERTEX_SONNET
    assert json.loads(streamed.body)["stream"] is True
    labels = {"provider": "anthropic", "model": "claude-sonnet-4-5", "team": "anonymous"}
    assert gw.sample("zdr_gateway_tokens_total", kind="output", **labels) == (
        msg.usage.output_tokens + final.usage.output_tokens
    )


async def test_token_refreshed_in_the_background_before_it_expires(
    vertex: tuple[VertexStandIn, Path],
    vertex_upstream: VertexUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
) -> None:
    standin, _ = vertex
    standin.token_seconds = 2
    config_dict["upstreams"] = [vertex_upstream(refresh_ahead_seconds=1)]
    gw = await start_gateway(config_dict)
    client = sdk(gw)
    await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
    first = standin.seen[-1].headers["Authorization"]
    await asyncio.sleep(2.6)  # the first token has expired by now
    await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
    await client.close()
    later = standin.seen[-1].headers["Authorization"]
    assert first == "Bearer ya29.standin-1"
    assert later != first
    assert len(standin.issued) >= 2
    assert standin.refused == 0  # no request ever carried an expired token


@pytest.mark.parametrize(
    ("fail", "exc", "status", "words"),
    [
        ((429, "RESOURCE_EXHAUSTED"), anthropic.RateLimitError, 429, "Quota exceeded"),
        ((503, "UNAVAILABLE"), anthropic.InternalServerError, 529, "Quota exceeded"),
        ((400, "INVALID_ARGUMENT"), anthropic.BadRequestError, 400, "Quota exceeded"),
        ((529, None), anthropic.InternalServerError, 529, "Busy."),  # Anthropic's own: as is
    ],
)
async def test_errors_in_anthropic_shape(
    fail: tuple[int, str | None],
    exc: type[anthropic.APIStatusError],
    status: int,
    words: str,
    vertex: tuple[VertexStandIn, Path],
    vertex_upstream: VertexUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
) -> None:
    standin, _ = vertex
    standin.fail = fail
    config_dict["upstreams"] = [vertex_upstream()]
    gw = await start_gateway(config_dict)
    client = sdk(gw)
    with pytest.raises(exc) as info:
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
    await client.close()
    assert info.value.status_code == status
    body = info.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert words in body["error"]["message"]


async def test_refused_token_is_the_gateways_problem_not_the_clients(
    vertex: tuple[VertexStandIn, Path],
    vertex_upstream: VertexUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
) -> None:
    standin, _ = vertex
    config_dict["upstreams"] = [vertex_upstream()]
    gw = await start_gateway(config_dict)
    standin.issued.clear()  # the stand-in forgets the token it issued
    client = sdk(gw)
    with pytest.raises(anthropic.InternalServerError) as info:
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
    await client.close()
    assert "refused the gateway's credentials" in str(info.value)


@pytest.mark.parametrize(
    ("region", "origin"),
    [
        ("global", "https://aiplatform.googleapis.com"),
        ("eu", "https://aiplatform.eu.rep.googleapis.com"),
        ("us", "https://aiplatform.us.rep.googleapis.com"),
        ("europe-west4", "https://europe-west4-aiplatform.googleapis.com"),
    ],
)
def test_origin_per_region_and_residency(region: str, origin: str) -> None:
    text = f"""
server: {{tls: {{enabled: false}}}}
upstreams:
  - name: vertex
    provider: vertex
    labels: {{region: eu}}
    vertex:
      {{project: my-project, region: {region}, models: {{claude-sonnet-4-5: {VERTEX_SONNET}}}}}
"""
    if region in ("eu", "europe-west4"):
        assert parse(text, env={}).upstreams[0].pool()[0].origin == origin
        return
    with pytest.raises(ConfigError, match=r"labels\.region is 'eu'"):
        parse(text, env={})
    assert (
        parse(text.replace("labels: {region: eu}", "labels: {}"), env={})
        .upstreams[0]
        .pool()[0]
        .origin
        == origin
    )


async def test_gke_metadata_server_through_google_auth_default(
    vertex: tuple[VertexStandIn, Path],
    vertex_upstream: VertexUpstream,
    spawn_gateway: SpawnGateway,
    config_dict: dict[str, Any],
    tmp_path: Path,
) -> None:
    """No key file: google.auth.default() finds the (GKE) metadata server and its token.
    google-auth reads the metadata host at import, so the gateway runs as its own process."""
    standin, _ = vertex
    asked: list[str] = []

    async def metadata(request: web.Request) -> web.Response:
        assert request.headers.get("Metadata-Flavor") == "Google"
        asked.append(request.path)
        flavor = {"Metadata-Flavor": "Google"}
        if request.path.endswith("/token"):
            token = f"ya29.metadata-{len(standin.issued) + 1}"
            standin.issued[token] = time.time() + 3600
            doc = {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
            return web.json_response(doc, headers=flavor)
        if request.path.endswith("/service-accounts/default/"):
            doc2 = {"email": "gw@standin-project.iam.gserviceaccount.com", "aliases": ["default"],
                    "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}  # fmt: skip
            return web.json_response(doc2, headers=flavor)
        if request.path.endswith("/project/project-id"):
            return web.Response(text="standin-project", headers=flavor)
        return web.Response(text="ok", headers=flavor)

    app = web.Application()
    app.router.add_get("/{tail:.*}", metadata)
    runner, url = await serve(app)
    host = url.removeprefix("http://")
    upstream = vertex_upstream()
    del upstream["vertex"]["credentials_file"]
    config_dict["upstreams"] = [upstream]
    env = {
        "GCE_METADATA_HOST": host,
        "GCE_METADATA_IP": host,
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "GOOGLE_APPLICATION_CREDENTIALS": "",
    }
    try:
        gp = await spawn_gateway(config_dict, env=env)
        async with httpx2.AsyncClient(verify=gp.client_ssl()) as http:
            r = await http.post(
                gp.url + "/v1/messages",
                json={"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": PROMPT},
                headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
            )
    finally:
        await runner.cleanup()
    assert r.status_code == 200, r.text
    assert standin.seen[-1].headers["Authorization"] == "Bearer ya29.metadata-1"
    assert any(p.endswith("/token") for p in asked)
