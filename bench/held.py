"""`python -m bench.held [--tree DIR] [--n N] [--mib S]`: resident memory per MiB of
request body the gateway holds.

A `serve` subprocess (from DIR, default this checkout) forwards N concurrent requests
with S MiB JSON bodies to an upstream that reads each body, then waits a second
before it answers, so all N bodies are held at once. The peak (VmHWM) minus the
resident size after a warm-up request, over N x S, is the cost per held MiB.
Run it from two checkouts in one sitting to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.proc import free_port, spawn, wait_port

MiB = 1024 * 1024


async def upstream(request: web.Request) -> web.Response:
    await request.read()
    await asyncio.sleep(float(request.app["delay"]))
    return web.json_response(
        {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
         "usage": {"input_tokens": 1, "output_tokens": 1}}
    )  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    app = web.Application(client_max_size=1024 * MiB)
    app["delay"] = 1.0
    app.router.add_post("/v1/messages", upstream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    up_port, port, admin = free_port(), free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", up_port).start()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"zdr-held-{os.getpid()}.yaml"
    server: dict[str, object] = {
        "host": "127.0.0.1", "port": port, "tls": {"enabled": False},
        "max_body_bytes": (args.mib + 1) * MiB,
    }  # fmt: skip
    cfg = {
        "server": server,
        "admin": {"host": "127.0.0.1", "port": admin},
        "upstreams": [
            {"name": "anthropic", "provider": "anthropic", "url": f"http://127.0.0.1:{up_port}",
             "api_key": "bench-upstream-key"}
        ],
        "auth": {"enabled": False},
        "audit": {"sink": "none"},
    }  # fmt: skip
    if (Path(args.tree) / "gateway/serve/settings.py").exists():
        # Room for every body (3x each while parsed), so that all N are held at once.
        server["limits"] = {"body_memory_bytes": 4 * args.n * (args.mib + 1) * MiB}
    tmp.write_text(json.dumps(cfg))
    # `-m gateway` would import this checkout (the working directory comes first).
    tree = str(Path(args.tree).resolve())
    code = f"import sys; sys.path.insert(0, {tree!r}); from gateway.cli import main; main()"
    gw = spawn("gateway", ["-c", code, "serve", "--config", str(tmp)], core=None)
    try:
        wait_port(gw, port)
        # Base64 text (an image or a PDF in a prompt): ASCII, one JSON string.
        text = "QUJD" * (args.mib * MiB // 4 - 64)
        body = json.dumps(
            {"model": "claude-sonnet-4-5", "max_tokens": 16,
             "messages": [{"role": "user", "content": text}]}
        ).encode()  # fmt: skip
        url = f"http://127.0.0.1:{port}/v1/messages"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=b'{"model":"x","max_tokens":1,"messages":[]}',
                                 headers={"content-type": "application/json"}) as r:  # fmt: skip
                await r.read()
            await asyncio.sleep(0.5)
            base = gw.status_kib("VmRSS")
            gw.reset_peak_rss()

            async def one() -> int:
                headers = {"content-type": "application/json"}
                async with http.post(url, data=body, headers=headers) as r:
                    await r.read()
                    return r.status

            statuses = await asyncio.gather(*(one() for _ in range(args.n)))
            peak = gw.status_kib("VmHWM")
        held = statuses.count(200) * len(body) / MiB
        grown = (peak - base) / 1024
        print(
            f"{args.tree}: {args.n} x {len(body) / MiB:.1f} MiB bodies, statuses "
            f"{sorted(set(statuses))}: RSS {base / 1024:.0f} MiB -> peak {peak / 1024:.0f} MiB, "
            f"+{grown:.0f} MiB = {grown / held:.2f} MiB resident per MiB held"
        )
    finally:
        gw.stop()
        tmp.unlink(missing_ok=True)
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", default=".")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--mib", type=int, default=16)
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
