"""`zdr-gateway demo`: the whole path on this machine, with no network and no setup.

A stand-in model API on loopback (TLS, in-memory CA), the gateway in front of
it, one streamed request through the gateway, and what an operator sees.
"""

from __future__ import annotations

import io
import json
import logging
import ssl
import sys
from importlib import resources
from typing import TextIO

import aiohttp
from aiohttp import web

from gateway import config as config_mod
from gateway.audit.sinks import StreamSink
from gateway.demo.certs import make_ca_and_leaf, memory_file
from gateway.demo.key import issue_demo_key
from gateway.demo.stub_anthropic import StubUpstream
from gateway.observe.logs import configure
from gateway.observe.metrics import Metrics
from gateway.serve import server
from gateway.state import AUDIT

PROMPT = "Say hello through the gateway."
REPLY = (
    "Hello! This answer streamed through zdr-gateway chunk by chunk: "
    "it was never written to disk, logged, or kept after the request ended."
)


def main() -> int:
    server.run(_demo())
    return 0


async def _demo() -> None:
    out = sys.stdout
    log_buffer = io.StringIO()
    configure("info", stream=log_buffer)
    ca_pem, cert_pem, key_pem = make_ca_and_leaf()
    ca_path = memory_file("demo-ca", ca_pem)
    demo_key = issue_demo_key()
    stub = StubUpstream()
    stub.behaviour.reply = REPLY
    stub.behaviour.event_delay = 0.04
    up_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    up_ctx.load_cert_chain(memory_file("demo-cert", cert_pem), memory_file("demo-key", key_pem))
    up_runner = web.AppRunner(stub.app, access_log=None)
    await up_runner.setup()
    up_site = web.TCPSite(up_runner, "127.0.0.1", 0, ssl_context=up_ctx)
    await up_site.start()
    env = {
        "ZDR_DEMO_CERT": memory_file("gw-cert", cert_pem),
        "ZDR_DEMO_KEY": memory_file("gw-key", key_pem),
        "ZDR_DEMO_CA": ca_path,
        "ZDR_DEMO_UPSTREAM": f"https://localhost:{server.bound_port(up_site)}",
        "ZDR_DEMO_UPSTREAM_KEY": stub.api_key,
        "ZDR_DEMO_SIGNING_PUB": memory_file("demo-signing-pub", demo_key.public_pem),
    }
    text = resources.files("gateway.demo").joinpath("demo.yaml").read_text()
    cfg = config_mod.parse(text, source="demo.yaml", env=env)
    running = await server.start(cfg, Metrics())
    # The audit line joins the log lines in the buffer shown at the end.
    running.app[AUDIT].sink = StreamSink(log_buffer)
    base = f"https://localhost:{running.port}"
    admin = f"http://127.0.0.1:{running.admin_port}"
    print(
        f"stand-in model API  https://localhost:{server.bound_port(up_site)}  (loopback, TLS)",
        file=out,
    )
    print(f"zdr-gateway         {base}  (TLS, admin {admin})", file=out)
    print(f"scoped key issued   {demo_key.key[:12]}…  ({demo_key.describe()})", file=out)
    client_ctx = ssl.create_default_context(cafile=ca_path)
    try:
        async with aiohttp.ClientSession() as http:
            before = await _scrape(http, admin)
            asked = f'\n> POST {base}/v1/messages  stream=true  "{PROMPT}"\n'
            print(asked, file=out)  # ZDR-OK: the demo's own prompt
            await _stream(http, base, client_ctx, out, demo_key.key)
            await _out_of_scope(http, base, client_ctx, out, demo_key.key)
            after = await _scrape(http, admin)
    finally:
        await running.stop()
        await up_runner.cleanup()
    print("\n\nwhat the operator sees — metrics that moved (GET /metrics):", file=out)
    for line in _moved(before, after):
        print(f"  {line}", file=out)
    heading = "\nthe audit line, one per request (metadata only, no content):"
    print(heading, file=out)  # ZDR-OK: a heading
    for line in log_buffer.getvalue().splitlines():
        if '"request_id"' in line:
            print(f"  {line}", file=out)
    print(
        f"\nthe stand-in API saw the gateway's upstream key, not the client's; "
        f"requests it received: {len(stub.requests)}",
        file=out,
    )


async def _stream(
    http: aiohttp.ClientSession, base: str, ctx: ssl.SSLContext, out: TextIO, key: str
) -> None:
    body = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 256,
        "stream": True,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    headers = {"anthropic-version": "2023-06-01", "x-api-key": key}
    async with http.post(f"{base}/v1/messages", json=body, headers=headers, ssl=ctx) as resp:
        resp.raise_for_status()
        buffer = b""
        async for chunk in resp.content.iter_any():
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                for line in event.split(b"\n"):
                    if line.startswith(b"data: "):
                        data = json.loads(line[6:])
                        delta = data.get("delta", {})
                        if data.get("type") == "content_block_delta":
                            shown = delta.get("text", "")
                            print(shown, end="", flush=True, file=out)  # ZDR-OK: the demo's reply


async def _out_of_scope(
    http: aiohttp.ClientSession, base: str, ctx: ssl.SSLContext, out: TextIO, key: str
) -> None:
    """The same key asking for a model outside its scope: refused before any upstream call."""
    body = {
        "model": "claude-opus-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    headers = {"anthropic-version": "2023-06-01", "x-api-key": key}
    async with http.post(f"{base}/v1/messages", json=body, headers=headers, ssl=ctx) as resp:
        error = (await resp.json())["error"]
    asked = f"\n\n> POST {base}/v1/messages  model=claude-opus-5 (outside the key's scope)"
    print(asked, file=out)  # ZDR-OK: a heading
    print(f"< {resp.status} {error['type']}: {error['message']}", file=out)


async def _scrape(http: aiohttp.ClientSession, admin: str) -> dict[str, str]:
    async with http.get(f"{admin}/metrics") as resp:
        text = await resp.text()
    samples = {}
    for line in text.splitlines():
        if line.startswith("zdr_gateway_") and "_bucket" not in line and "_created" not in line:
            name, _, value = line.rpartition(" ")
            samples[name] = value
    return samples


def _moved(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [f"{k} {v}" for k, v in after.items() if before.get(k) != v]


if __name__ == "__main__":
    logging.raiseExceptions = False
    raise SystemExit(main())
