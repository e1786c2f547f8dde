"""The official TypeScript SDK (@anthropic-ai/sdk, pinned in tests/clients/package.json):
messages.stream through the gateway, with a gateway key, over real TLS."""

from __future__ import annotations

import asyncio
import json
import os

from gateway.demo.stub_anthropic import STUB_API_KEY
from tests.clients.conftest import HERE, CCGateway, node
from tests.conftest import Upstream


async def test_messages_stream(cc_gateway: CCGateway, upstream: Upstream) -> None:
    gw = cc_gateway.gw
    proc = await asyncio.create_subprocess_exec(
        node(),
        str(HERE / "sdk_stream.mjs"),
        gw.url,
        cc_gateway.key,
        cwd=HERE,
        env={"PATH": os.environ.get("PATH", ""), "NODE_EXTRA_CA_CERTS": gw.ca_path},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["text"] == "Hello from the stand-in model."
    assert result["stop_reason"] == "end_turn"
    assert result["usage"]["output_tokens"] == 5  # one delta per word
    assert result["events"][0] == "message_start"
    assert result["events"][-1] == "message_stop"
    (seen,) = upstream.stub.requests
    assert seen.headers["x-api-key"] == STUB_API_KEY
    assert cc_gateway.key not in repr(seen)
