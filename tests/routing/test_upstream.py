"""The upstream session is shared by every client: nothing one response sets may ride along
on another client's request."""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.conftest import StartGateway

BODY = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "hi"}],
}


async def test_upstream_cookies_are_not_replayed(
    aiohttp_server: AiohttpServer, start_gateway: StartGateway, config_dict: dict[str, Any]
) -> None:
    seen: list[str | None] = []

    async def messages(request: web.Request) -> web.Response:
        seen.append(request.headers.get("cookie"))
        resp = web.json_response({"type": "message", "usage": {"input_tokens": 1}})
        # What a CDN in front of a provider does (e.g. a bot-management cookie).
        resp.set_cookie("__cf_bm", "set-for-the-first-client", path="/")
        return resp

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    upstream = await aiohttp_server(app)
    cfg = copy.deepcopy(config_dict)
    # A host name, not an IP: cookie jars ignore cookies from IP addresses.
    cfg["upstreams"][0]["url"] = f"http://localhost:{upstream.port}"
    cfg["upstreams"][0].pop("ca_file")
    gw = await start_gateway(cfg)
    async with aiohttp.ClientSession() as first, aiohttp.ClientSession() as second:
        for http in (first, second):
            async with http.post(gw.url + "/v1/messages", json=BODY, ssl=gw.client_ssl()) as resp:
                assert resp.status == 200
                assert "set-cookie" not in resp.headers  # not on the response allow-list
    assert seen == [None, None]
