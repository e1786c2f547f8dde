"""The official TypeScript SDK (@anthropic-ai/sdk, pinned in tests/clients/package.json):
messages.stream through the gateway, with a gateway key, over real TLS."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from gateway.demo.stub_anthropic import STUB_API_KEY
from tests.clients.conftest import HERE, CCGateway, issue_key, node
from tests.conftest import Gateway, StartGateway, Upstream
from tests.pii.echo_upstream import EchoUpstream, serving


async def sdk_stream(gw: Gateway, key: str, *prompt: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        node(),
        str(HERE / "sdk_stream.mjs"),
        gw.url,
        key,
        *prompt,
        cwd=HERE,
        env={"PATH": os.environ.get("PATH", ""), "NODE_EXTRA_CA_CERTS": gw.ca_path},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_messages_stream(cc_gateway: CCGateway, upstream: Upstream) -> None:
    result = await sdk_stream(cc_gateway.gw, cc_gateway.key)
    assert result["text"] == "Hello from the stand-in model."
    assert result["stop_reason"] == "end_turn"
    assert result["usage"]["output_tokens"] == 5  # one delta per word
    assert result["events"][0] == "message_start"
    assert result["events"][-1] == "message_stop"
    (seen,) = upstream.stub.requests
    assert seen.headers["x-api-key"] == STUB_API_KEY
    assert cc_gateway.key not in repr(seen)


async def test_messages_stream_with_pseudonymisation(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    cert_files: dict[str, str],
    tmp_path: Path,
) -> None:
    """The stand-in sees placeholders only and echoes them, split across deltas and
    network chunks, in text and in a tool_use input; the SDK's accumulated message has
    the originals in both."""
    email, phone = "zq.ts.canary.2f8e@example.org", "+1 415-555-2671"
    stub = EchoUpstream({len(email), len(phone)})
    key, public = issue_key(tmp_path)
    async with serving(stub, cert_files) as url:
        config_dict["upstreams"][0]["url"] = url
        config_dict["auth"] = {"signing_keys": [{"kid": "cc", "public_key_file": public}]}
        config_dict["pii"] = {"default": {"email": "pseudonymise", "phone": "pseudonymise"}}
        gw = await start_gateway(config_dict)
        result = await sdk_stream(gw, key, f"Write to {email}, or call {phone}.")
    assert not stub.saw(email)
    assert not stub.saw(phone)
    assert result["text"] == f"Reply for {email}, {phone}."
    text, tool = result["content"]
    assert text["text"] == result["text"]
    assert tool["type"] == "tool_use"
    assert tool["input"] == {"to": email, "all": [email, phone]}
