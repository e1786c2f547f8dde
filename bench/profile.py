"""`python -m bench.profile {json,sse,stream} [--tls] [--auth] [--seconds N]`: where the
gateway's CPU goes under load, sampled from outside by py-spy (no code change, low overhead).

Starts the same rig as `python -m bench` (stubs, a gateway pinned to its own core),
drives it with wrk (json, sse) or the 1 GiB stream (stream), records py-spy samples
of the gateway's active threads, and prints the share by component and the
functions with the most self time.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import wrk
from bench.__main__ import GiB, Rig, client, enable_auth, start_gateway
from bench.client import payload
from bench.proc import cores, free_port, spawn, wait_port

# Time inside logging or metrics counts as theirs, whatever they call underneath.
OWNERS = [
    ("logging/__init__", "logging: the access line"),
    ("pythonjsonlogger", "logging: the access line"),
    ("prometheus_client", "prometheus metrics"),
]
# Otherwise the innermost frame decides; first match wins.
COMPONENTS = [
    ("gateway/providers/sse.py", "gateway: SSE usage reader"),
    ("gateway/providers/", "gateway: provider adapter (headers, usage)"),
    ("gateway/auth/", "gateway: auth stage"),
    ("gateway/ratelimit/", "gateway: rate limiter"),
    ("gateway/http1/", "gateway: upstream HTTP/1.1 client"),
    ("httptools", "gateway: upstream HTTP/1.1 client"),
    ("gateway/", "gateway: stages and forward"),
    ("aiohttp/client", "aiohttp client (upstream request)"),
    ("aiohttp/connector", "aiohttp client (upstream request)"),
    ("aiohttp/", "aiohttp server, HTTP writer, streams"),
    ("multidict", "aiohttp server, HTTP writer, streams"),
    ("yarl", "aiohttp server, HTTP writer, streams"),
    ("Runner.run", "event loop and socket I/O (uvloop, native)"),
    ("asyncio/", "asyncio (timeouts, tasks)"),
    ("json/", "json (stdlib)"),
]


def component(stack: list[str]) -> str:
    for frame in stack:
        for needle, name in OWNERS:
            if needle in frame:
                return name
    for needle, name in COMPONENTS:
        if needle in stack[-1]:
            return name
    return "other"


def summarise(raw: Path, top: int, lines: bool = False) -> None:
    by_component: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    by_line: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack_text, count_text = line.rsplit(" ", 1)
        count = int(count_text)
        stack = stack_text.split(";")
        total += count
        by_component[component(stack)] += count
        if "gateway/" in stack[-1]:
            by_line[re.sub(r"\(.*(gateway/)", "(gateway/", stack[-1])] += count
        leaf = re.sub(r":\d+\)$", ")", stack[-1])
        by_function[re.sub(r"\(.*(site-packages|python3\.\d+|wt/[^/]+)/", "(", leaf)] += count
    print(f"{total} samples of the gateway's active threads")
    print("\nshare by component:")
    for name, n in by_component.most_common():
        print(f"  {100 * n / total:5.1f} %  {name}")
    print(f"\ntop {top} functions by self time:")
    for name, n in by_function.most_common(top):
        print(f"  {100 * n / total:5.1f} %  {name}")
    if lines:
        print(f"\ntop {top} lines of the gateway's own code by self time:")
        for name, n in by_line.most_common(top):
            print(f"  {100 * n / total:5.1f} %  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("workload", choices=["json", "sse", "stream"])
    parser.add_argument("--tls", action="store_true", help="TLS between client and gateway")
    parser.add_argument("--auth", action="store_true", help="auth on, a gateway-issued key")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--lines", action="store_true", help="also the gateway's hottest lines")
    args = parser.parse_args()
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed (pip install py-spy; it is in the dev extra)")
    avail = cores()
    server_core, load_core = (avail[0], avail[1]) if len(avail) >= 2 else (None, None)
    with tempfile.TemporaryDirectory(prefix="zdr-profile-") as tmp:
        rig = Rig(Path(tmp), server_core, load_core)
        for mode in ("fast", "paced", "big"):
            port = free_port()
            proc = spawn(f"stub-{mode}", ["-m", "bench.upstream", str(port), mode], core=load_core)
            rig.stubs[mode] = (proc, port)
            wait_port(proc, port)
        if args.auth:
            enable_auth(rig)
        headers = rig.headers(direct=False)
        gw, url, _ = start_gateway(rig, tls=args.tls)
        raw = Path(tmp) / "samples.raw"
        try:
            body = payload(stream=args.workload == "sse")
            if args.workload != "stream":
                wrk.run(
                    url + "/v1/messages",
                    body,
                    headers,
                    connections=args.connections,
                    seconds=1,
                    core=load_core,
                )
            # Sample active threads only (not idle waits), 400 Hz.
            record = [spy, "record", "-p", str(gw.pid), "-r", "400", "-f", "raw"]
            sampler = subprocess.Popen(
                [*record, "-o", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            cpu = gw.cpu_seconds()
            if args.workload == "stream":
                result = client(rig, "drain", url + "/big/v1/messages", str(GiB), direct=False)
                done = f"{int(result['bytes']) / GiB:.2f} GiB"  # type: ignore[call-overload]
            else:
                run = wrk.run(
                    url + "/v1/messages",
                    body,
                    headers,
                    connections=args.connections,
                    seconds=args.seconds,
                    core=load_core,
                )
                done = f"{run.requests} requests, {run.rps:,.0f} req/s"
            cpu = gw.cpu_seconds() - cpu
            sampler.send_signal(2)  # SIGINT: py-spy writes what it has
            sampler.wait(30)
        finally:
            gw.stop()
            for proc, _ in rig.stubs.values():
                proc.stop()
        print(f"{args.workload}{' (TLS)' if args.tls else ''}: {done}, gateway CPU {cpu:.2f} s")
        summarise(raw, args.top, args.lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
