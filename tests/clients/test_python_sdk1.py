"""The anthropic Python SDK 1.x (tests/clients/requirements-sdk1.txt, installed by
`make clients` beside the 2.x the venv has) through the gateway: it sends x-api-key and
anthropic-version 2023-06-01; 2.x sends Bearer and 2026-10-21. Both versions pass
unchanged; the gateway's refusals reach both as the SDK's BadRequestError."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import anthropic

from gateway.demo.stub_anthropic import STUB_API_KEY
from tests.clients.conftest import HERE, CCGateway
from tests.conftest import Upstream

SDK1 = HERE / "py-sdk1"
REPLY = "Hello from the stand-in model."

if not (SDK1 / "anthropic").is_dir():  # a clear failure, not a skip
    raise RuntimeError("tests/clients needs the anthropic 1.x SDK: run `make clients`")


def headers_of(upstream: Upstream) -> list[dict[str, str]]:
    return [{k.lower(): v for k, v in r.headers.items()} for r in upstream.stub.requests]


async def test_sdk1_create_stream_models_and_a_refusal(
    cc_gateway: CCGateway, upstream: Upstream
) -> None:
    gw = cc_gateway.gw
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "sdk1_calls.py"),
        gw.url,
        cc_gateway.key,
        gw.ca_path,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(SDK1)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    got = json.loads(out)
    assert got["version"].startswith("1.")
    assert got["text"] == got["streamed"] == REPLY
    assert got["models"] == ["claude-sonnet-5-5", "claude-haiku-5-5"]
    assert got["refused"]["status"] == 400
    assert got["refused"]["body"]["error"]["type"] == "invalid_request_error"
    assert "rule anthropic.files;" in got["refused"]["body"]["error"]["message"]
    sent = headers_of(upstream)
    assert len(sent) == 3  # create, stream, models: the refused call never left
    assert {h["anthropic-version"] for h in sent} == {"2023-06-01"}
    assert {h["x-api-key"] for h in sent} == {STUB_API_KEY}


async def test_sdk2_sends_bearer_and_its_own_version(
    cc_gateway: CCGateway, upstream: Upstream
) -> None:
    gw = cc_gateway.gw
    client = anthropic.AsyncAnthropic(
        base_url=gw.url,
        api_key=cc_gateway.key,
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
    )
    async with client:
        msg = await client.messages.create(
            model="claude-sonnet-5-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert msg.content[0].text == REPLY  # type: ignore[union-attr]
    (sent,) = headers_of(upstream)
    assert anthropic.__version__.startswith("2.")
    assert sent["anthropic-version"] == "2026-10-21"  # forwarded unchanged
    assert sent["x-api-key"] == STUB_API_KEY
    assert "authorization" not in sent  # the client's Bearer never leaves
