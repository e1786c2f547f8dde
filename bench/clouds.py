"""`python -m bench.clouds`: gateway CPU per streamed request, Anthropic path vs Bedrock invoke.

One gateway (pinned alone to core 0) with two upstreams: the Anthropic stand-in
(`bench.upstream fast`: 6 text deltas, 11 SSE events) at `""`, and the Bedrock stand-in
(tests/support/bedrock_standin.py, InvokeModel, the same 6-word reply, one event stream
frame per write, every request's SigV4 signature verified) at `/bedrock`, mode `invoke`,
signing each request with SigV4. Rounds alternate between the two paths in the same
sitting; each round sends ROUND streamed requests, CONCURRENCY at a time, and reads
`utime+stime` of the gateway process before and after. The number is the median over
rounds of CPU seconds ÷ requests, and the ratio Bedrock ÷ Anthropic (target ≤ 1.5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

from bench import proc
from bench.client import payload
from bench.profile import summarise

ROUND, CONCURRENCY = 400, 8
STANDIN = """
import sys
from aiohttp import web
from tests.support.bedrock_standin import BedrockStandIn
s = BedrockStandIn(secrets={"AKIABENCH00000000001": ("bench-secret", None)}, mantle=False,
                   record=False, verify=False)
s.behaviour.reply = "Hello from the stand-in model."
s.behaviour.split = -1
web.run_app(s.app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


async def one_round(url: str, n: int, body: bytes) -> None:
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01",
               "x-api-key": "bench"}  # fmt: skip
    sem = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession() as http:

        async def go() -> None:
            async with sem, http.post(url, data=body, headers=headers) as resp:
                data = await resp.read()
                if resp.status != 200 or b"message_stop" not in data:
                    raise RuntimeError(f"{url}: {resp.status} {data[:200]!r}")

        await asyncio.gather(*(go() for _ in range(n)))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.clouds")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json")
    parser.add_argument("--profile", choices=["anthropic", "bedrock_invoke"],
                        help="py-spy the gateway during that path's rounds only")  # fmt: skip
    args = parser.parse_args(argv)
    cores = proc.cores()
    gw_core, other = (cores[0], cores[1]) if len(cores) > 1 else (None, None)
    tmp = Path(tempfile.mkdtemp(prefix="bench-clouds-"))
    a_port, b_port, port, admin = (proc.free_port() for _ in range(4))
    procs = [
        proc.spawn("anthropic", ["-m", "bench.upstream", str(a_port), "fast"], core=other),
        proc.spawn("bedrock", ["-c", STANDIN, str(b_port)], core=other),
    ]
    config = {
        "server": {"host": "127.0.0.1", "port": port, "tls": {"enabled": False}},
        "admin": {"host": "127.0.0.1", "port": admin},
        "upstreams": [
            {"name": "anthropic", "provider": "anthropic", "url": f"http://127.0.0.1:{a_port}",
             "api_key": "stub-upstream-key"},
            {"name": "bedrock", "provider": "bedrock", "prefix": "/bedrock",
             "url": f"http://127.0.0.1:{b_port}",
             "bedrock": {"region": "eu-central-1", "mode": "invoke",
                         "check_invocation_logging": False,
                         "models": {"claude-sonnet-5-5": "eu.anthropic.claude-sonnet-5-5-v1:0"}}},
        ],
        "auth": {"enabled": False},
        "audit": {"sink": "none"},
    }  # fmt: skip
    (tmp / "gw.yaml").write_text(yaml.safe_dump(config))
    env = {"AWS_ACCESS_KEY_ID": "AKIABENCH00000000001", "AWS_SECRET_ACCESS_KEY": "bench-secret",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(tmp / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none")}  # fmt: skip
    gw = proc.spawn(
        "gateway", ["-m", "gateway", "serve", "--config", str(tmp / "gw.yaml")], core=gw_core,
        env=env,
    )  # fmt: skip
    procs.append(gw)
    try:
        for p, pt in ((procs[0], a_port), (procs[1], b_port), (gw, port)):
            proc.wait_port(p, pt)
        body = payload(stream=True)
        paths = {"anthropic": "/v1/messages", "bedrock_invoke": "/bedrock/v1/messages"}
        per: dict[str, list[float]] = {k: [] for k in paths}
        for path in paths.values():  # warm-up
            asyncio.run(one_round(f"http://127.0.0.1:{port}{path}", 50, body))
        raw = tmp / "samples.raw"
        sampler = None
        if args.profile:
            spy = shutil.which("py-spy") or "py-spy"
            record = [spy, "record", "-p", str(gw.pid), "-r", "400", "-f", "raw", "-o", str(raw)]
            sampler = subprocess.Popen(
                [*record, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(0.5)
            paths = {args.profile: paths[args.profile]}
        for _ in range(args.rounds):
            for name, path in paths.items():
                before = gw.cpu_seconds()
                asyncio.run(one_round(f"http://127.0.0.1:{port}{path}", ROUND, body))
                per[name].append((gw.cpu_seconds() - before) / ROUND)
        if sampler is not None:
            sampler.send_signal(2)
            sampler.wait(30)
            summarise(raw, 30, lines=True)
            return
    finally:
        for p in procs:
            p.stop()
    result = {k: statistics.median(v) * 1000 for k, v in per.items()}
    ratio = result["bedrock_invoke"] / result["anthropic"]
    print(f"gateway CPU per streamed request, median of {args.rounds} rounds of {ROUND}:")
    for k, v in result.items():
        print(f"  {k:15s} {v:.3f} ms   (rounds: {', '.join(f'{x * 1000:.3f}' for x in per[k])})")
    print(f"  ratio bedrock_invoke / anthropic = {ratio:.2f} (target <= 1.5)")
    if args.json:
        Path(args.json).write_text(json.dumps({"ms": result, "ratio": ratio, "rounds": per}))


if __name__ == "__main__":
    main(sys.argv[1:])
