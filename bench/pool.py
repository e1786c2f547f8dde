"""`python -m bench.pool [--seconds S] [--rounds R]`: what a pool of targets costs.

Three gateway processes in the same sitting, each in front of the same fast stubs
(`bench.upstream ... fast`, plain HTTP, auth off, audit to the log file as in
`python -m bench`):

- single: one upstream with one `url` (today's form: a pool of one);
- pool3: one upstream with three healthy targets of equal weight (three stubs);
- failover: a dead first-priority target (a port nothing listens on: every
  attempt is a refused connect) and a healthy second; breaker off and a retry
  budget that never runs out, so every request fails over.

Numbers:

1. CPU per request (`utime+stime` of the gateway process ÷ requests) at c=32,
   single and pool3 measured in alternating rounds, medians; target: pool3
   within 3 % of single.
2. JSON latency p50 at c=1, single and failover in alternating 1 s rounds,
   medians; the added time against one upstream connect time (a loopback TCP
   connect to a stub from asyncio, median of 200); target: added ≤ connect.

Pinning as in `python -m bench`: the gateway under load on core 0, stubs and wrk
on core 1 (the idle gateways wait on core 0 too; they use no CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench import wrk
from bench.client import HEADERS, payload
from bench.proc import Proc, cores, free_port, spawn, wait_port


def stub(core: int | None) -> tuple[Proc, int]:
    port = free_port()
    proc = spawn("stub", ["-m", "bench.upstream", str(port), "fast"], core=core)
    wait_port(proc, port)
    return proc, port


def gateway(tmp: Path, name: str, upstream: dict[str, Any], core: int | None) -> tuple[Proc, str]:
    port, admin = free_port(), free_port()
    cfg = {
        "server": {"host": "127.0.0.1", "port": port, "tls": {"enabled": False}},
        "admin": {"host": "127.0.0.1", "port": admin},
        "upstreams": [
            {"name": "anthropic", "provider": "anthropic", "max_connections": 256, **upstream}
        ],
        "auth": {"enabled": False},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = spawn(name, ["-m", "gateway", "serve", "--config", str(path)], core=core)
    wait_port(proc, port)
    deadline = time.perf_counter() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            if time.perf_counter() > deadline:
                raise
            time.sleep(0.01)
    return proc, f"http://127.0.0.1:{port}/v1/messages"


def measured(
    gw: Proc, url: str, conns: int, seconds: float, core: int | None
) -> tuple[wrk.Result, float]:
    body = payload(stream=False)
    before = gw.cpu_seconds()
    r = wrk.run(url, body, HEADERS, connections=conns, seconds=seconds, core=core)
    used = gw.cpu_seconds() - before
    if r.errors or r.non2xx:
        raise RuntimeError(f"{gw.name}: {r.errors} socket errors, {r.non2xx} non-2xx")
    return r, used / r.requests


async def _connect_times(port: int, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        out.append(time.perf_counter() - start)
        writer.close()
        await writer.wait_closed()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0, help="per CPU round")
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    cs = cores()
    server_core, load_core = (cs[0], cs[1]) if len(cs) >= 2 else (None, None)
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        try:
            stubs = [stub(load_core) for _ in range(3)]
            procs += [p for p, _ in stubs]
            urls = [f"http://127.0.0.1:{port}" for _, port in stubs]
            key = {"api_key": "stub-upstream-key"}
            targets = [{"name": f"t{i}", "url": u, **key} for i, u in enumerate(urls)]
            dead = {"name": "dead", "url": f"http://127.0.0.1:{free_port()}", **key}
            live = {**targets[0], "priority": 1}
            gws = {
                "single": gateway(tmp, "single", {"url": urls[0], **key}, server_core),
                "pool3": gateway(tmp, "pool3", {"targets": targets}, server_core),
                "failover": gateway(
                    tmp,
                    "failover",
                    {
                        "targets": [dead, live],
                        "breaker": {"enabled": False},
                        "retry_budget": {"ratio": 10, "min_retries": 10000},
                    },
                    server_core,
                ),
            }
            procs += [p for p, _ in gws.values()]
            for gw, url in gws.values():  # warm-up: connections open, code paths hot
                measured(gw, url, 32, 1, load_core)
            cpu: dict[str, list[float]] = {"single": [], "pool3": []}
            for _ in range(args.rounds):
                for name in cpu:
                    gw, url = gws[name]
                    cpu[name].append(measured(gw, url, 32, args.seconds, load_core)[1])
            p50: dict[str, list[float]] = {"single": [], "failover": []}
            for _ in range(args.rounds * 2):
                for name in p50:
                    gw, url = gws[name]
                    p50[name].append(measured(gw, url, 1, 1, load_core)[0].p50_us / 1e3)
            connect = statistics.median(asyncio.run(_connect_times(stubs[0][1], 200))) * 1e3
        finally:
            for p in procs:
                p.stop()
    single, pool3 = (statistics.median(cpu[k]) * 1e3 for k in ("single", "pool3"))
    print(f"CPU per request, c=32, median of {args.rounds} alternating {args.seconds:g} s rounds")
    print(f"  single upstream       {single:.4f} ms   rounds {_fmt(cpu['single'])}")
    print(f"  pool of 3 targets     {pool3:.4f} ms   rounds {_fmt(cpu['pool3'])}")
    print(f"  pool3 / single        {pool3 / single:.3f}   (target <= 1.03)")
    direct, failover = (statistics.median(p50[k]) for k in ("single", "failover"))
    print(f"JSON latency p50, c=1, median of {args.rounds * 2} alternating 1 s rounds")
    print(f"  single upstream       {direct:.3f} ms")
    print(f"  failed over           {failover:.3f} ms   (+{failover - direct:.3f} ms)")
    print(f"  one upstream connect  {connect:.3f} ms   (target: added <= connect)")


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v * 1e3:.4f}" for v in values)


if __name__ == "__main__":
    main()
