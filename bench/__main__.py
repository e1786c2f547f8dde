"""`python -m bench [--quick] [--json FILE]`: the gateway against a direct connection
to the same stand-in upstream, measured in the same run, and a table of ratios.

Layout on a machine with two or more cores: the server under test (the gateway, or
the stub itself for "direct") is pinned alone to core 0; everything else (the stubs
behind the gateway, wrk, the measuring clients) shares core 1. Each is its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench import wrk
from bench.client import API_KEY_ENV, HEADERS, headers, payload
from bench.proc import Proc, cores, free_port, pin, spawn, wait_port
from bench.upstream import PACE, PACED_EVENTS
from gateway.auth import tokens
from gateway.auth.keyset import load_private_key, write_key_pair
from gateway.auth.principal import Limits
from gateway.demo.certs import make_ca_and_leaf

GiB = 1 << 30
MiB = 1 << 20


@dataclass
class Rig:
    tmp: Path
    server_core: int | None
    load_core: int | None
    # A gateway-issued key when the gateway runs with auth on (see `enable_auth`).
    gateway_key: str | None = None
    stubs: dict[str, tuple[Proc, int]] = field(default_factory=dict)
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    results: dict[str, float] = field(default_factory=dict)

    def row(self, name: str, direct: float | None, gateway: float, unit: str, fmt: str) -> None:
        self.results[f"{name} gateway"] = gateway
        if direct is not None:
            self.results[f"{name} direct"] = direct
        ratio = f"{gateway / direct:.2f}" if direct else ""
        shown = "" if direct is None else format(direct, fmt)
        self.rows.append((f"{name} [{unit}]", shown, format(gateway, fmt), ratio))
        print(f"  {name:<44} {shown:>10} {format(gateway, fmt):>10} {ratio:>6}", flush=True)

    def stub_url(self, mode: str, path: str = "/v1/messages") -> str:
        return f"http://127.0.0.1:{self.stubs[mode][1]}{path}"

    def headers(self, direct: bool) -> dict[str, str]:
        """The stub's key for the stub; the gateway key, alone, for a gateway with auth on
        (it refuses two disagreeing credentials); with auth off the gateway swaps the
        stub's key for the upstream's."""
        if direct or self.gateway_key is None:
            return HEADERS
        return headers(self.gateway_key)

    def api_key(self, direct: bool) -> str:
        return self.headers(direct)["x-api-key"]


AUTH_KID = "bench"


def bench_claims(now: int, ttl: int) -> tokens.KeyClaims:
    """The bench's gateway key: every stage runs, with limits far above one core."""
    return tokens.KeyClaims(
        key_id="bench-1",
        team="bench",
        issued_at=now - 60,
        not_before=now - 60,
        expires_at=now + ttl,
        endpoints=("messages", "count_tokens", "models"),
        models=("claude-*",),
        max_tokens=1 << 20,  # the 1 GiB stream asks for 32768
        limits=Limits(rpm=10**8, input_tpm=10**12, output_tpm=10**12, concurrency=10**4),
    )


def enable_auth(rig: Rig) -> None:
    """A signing key pair in the rig's tmp dir and one gateway key, valid now, with limits
    far above what one core can serve: the auth and limiter stages run, never refuse."""
    private_path, _ = write_key_pair(rig.tmp, AUTH_KID)
    claims = bench_claims(int(time.time()), ttl=24 * 3600)
    rig.gateway_key = tokens.issue(claims, load_private_key(private_path), AUTH_KID)


def gateway_config(rig: Rig, port: int, admin: int, tls: bool) -> Path:
    ups = [
        {
            "name": mode,
            "provider": "anthropic",
            "url": rig.stub_url(mode, ""),
            "api_key": "stub-upstream-key",
            "prefix": "" if mode == "fast" else f"/{mode}",
            "max_connections": 256,
        }
        for mode in ("fast", "paced", "big")
    ]
    tls_cfg: dict[str, object] = {"enabled": False}
    if tls:
        _, chain, key = make_ca_and_leaf()
        (rig.tmp / "tls.crt").write_bytes(chain)
        (rig.tmp / "tls.key").write_bytes(key)
        tls_cfg = {"cert_file": str(rig.tmp / "tls.crt"), "key_file": str(rig.tmp / "tls.key")}
    cfg = {
        "server": {"host": "127.0.0.1", "port": port, "tls": tls_cfg},
        "admin": {"host": "127.0.0.1", "port": admin},
        "upstreams": ups,
        "auth": auth_config(rig),
        "logging": {"level": "info"},
    }
    path = rig.tmp / f"gateway-{'tls' if tls else 'plain'}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def auth_config(rig: Rig) -> dict[str, object]:
    if rig.gateway_key is None:
        return {"enabled": False}
    public = rig.tmp / f"{AUTH_KID}.pub.pem"
    return {"signing_keys": [{"kid": AUTH_KID, "public_key_file": str(public)}]}


def start_gateway(rig: Rig, tls: bool) -> tuple[Proc, str, float]:
    port, admin = free_port(), free_port()
    config = gateway_config(rig, port, admin, tls)
    proc = spawn("gateway", ["-m", "gateway", "serve", "--config", str(config)], core=None)
    pin(proc.pid, rig.server_core)
    started = wait_port(proc, port)
    # Ready means /readyz says so, not just a listening socket.
    deadline = time.perf_counter() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            if time.perf_counter() > deadline:
                raise
            time.sleep(0.005)
    pin(proc.pid, rig.server_core)  # threads started since (e.g. the resolver pool)
    scheme = "https" if tls else "http"
    return proc, f"{scheme}://127.0.0.1:{port}", started


def client(rig: Rig, *args: str, direct: bool) -> dict[str, object]:
    env = {**os.environ, API_KEY_ENV: rig.api_key(direct)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.client", *args], stdout=subprocess.PIPE, text=True, env=env
    )
    pin(proc.pid, rig.load_core)
    out, _ = proc.communicate(timeout=600)
    if proc.returncode:
        raise RuntimeError(f"bench.client {args[0]} failed ({proc.returncode})")
    result: dict[str, object] = json.loads(out)
    return result


def place(rig: Rig, direct: bool, mode: str = "fast") -> None:
    """Direct: the stub is the server under test, alone on the server core."""
    proc, _ = rig.stubs[mode]
    pin(proc.pid, rig.server_core if direct else rig.load_core)


def load(
    rig: Rig, url: str, body: bytes, conns: int, seconds: float, watch: Proc, direct: bool
) -> tuple[wrk.Result, float]:
    """A warm-up, then a measured wrk run; CPU seconds used by `watch` during it."""
    hdrs = rig.headers(direct)
    wrk.run(url, body, hdrs, connections=conns, seconds=1, core=rig.load_core)
    before = watch.cpu_seconds()
    result = wrk.run(url, body, hdrs, connections=conns, seconds=seconds, core=rig.load_core)
    used = watch.cpu_seconds() - before
    if result.errors or result.non2xx:
        raise RuntimeError(f"{url}: {result.errors} socket errors, {result.non2xx} non-2xx")
    return result, used


def throughput(rig: Rig, gw: Proc, gw_url: str, label: str, seconds: float, c: int) -> None:
    stub = rig.stubs["fast"][0]
    for name, stream in (("JSON", False), ("SSE", True)):
        body = payload(stream=stream)
        place(rig, direct=True)
        direct, direct_cpu = load(rig, rig.stub_url("fast"), body, c, seconds, stub, True)
        place(rig, direct=False)
        via, cpu = load(rig, gw_url + "/v1/messages", body, c, seconds, gw, False)
        per = (direct_cpu / direct.requests * 1e3, cpu / via.requests * 1e3)
        rig.row(f"{name} req/s, c={c}{label}", direct.rps, via.rps, "req/s", ",.0f")
        rig.row(f"  CPU per request (stub | gateway){label}", per[0], per[1], "ms", ".3f")
        # Below ~95 %, something other than the server's own CPU limited req/s
        # (other processes on the core, the load generator, the stub behind it).
        rig.row(
            f"  server CPU busy{label}", direct_cpu / seconds * 100, cpu / seconds * 100, "%", ".0f"
        )


def latency(rig: Rig, gw: Proc, gw_url: str, label: str, seconds: float) -> None:
    """Alternating 1 s runs, direct then gateway, medians over the rounds: a burst of
    load from other processes then hits both sides instead of one whole run."""
    body = payload(stream=False)
    gw_headers = rig.headers(direct=False)
    wrk.run(gw_url + "/v1/messages", body, gw_headers, connections=1, seconds=1, core=rig.load_core)
    rounds: dict[str, list[float]] = {k: [] for k in ("d50", "g50", "d99", "g99")}
    cpu, requests = 0.0, 0
    for _ in range(max(2, round(seconds))):
        for side, url in (("d", rig.stub_url("fast")), ("g", gw_url + "/v1/messages")):
            place(rig, direct=side == "d")
            before = gw.cpu_seconds()
            hdrs = rig.headers(direct=side == "d")
            r = wrk.run(url, body, hdrs, connections=1, seconds=1, core=rig.load_core)
            if r.errors or r.non2xx:
                raise RuntimeError(f"{url}: {r.errors} socket errors, {r.non2xx} non-2xx")
            if side == "g":
                cpu += gw.cpu_seconds() - before
                requests += r.requests
            rounds[f"{side}50"].append(r.p50_us / 1e3)
            rounds[f"{side}99"].append(r.p99_us / 1e3)
    for p in ("50", "99"):
        d, g = statistics.median(rounds[f"d{p}"]), statistics.median(rounds[f"g{p}"])
        rig.row(f"JSON latency p{p}, c=1{label}", d, g, "ms", ".3f")
        rig.row(f"  added p{p}{label}", None, g - d, "ms", ".3f")
    # At c=1 nothing is batched per loop iteration: the CPU floor of the added latency.
    rig.row(f"  gateway CPU per request, c=1{label}", None, cpu / requests * 1e3, "ms", ".3f")


def paced(rig: Rig, gw_url: str, n: int) -> None:
    place(rig, True, "paced")
    direct = client(rig, "paced", rig.stub_url("paced"), str(n), direct=True)
    place(rig, False, "paced")
    via = client(rig, "paced", gw_url + "/paced/v1/messages", str(n), direct=False)

    def medians(result: dict[str, object]) -> tuple[float, float, float]:
        runs = result["runs"]
        assert isinstance(runs, list)
        delays = [d for r in runs for d in r["delays"]]
        ttfb = statistics.median(r["ttfb"] for r in runs)
        return ttfb, statistics.median(delays), statistics.quantiles(delays, n=100)[98]

    d_ttfb, d_delay, d_p99 = medians(direct)
    g_ttfb, g_delay, g_p99 = medians(via)
    pace = f"{PACED_EVENTS} events {PACE * 1e3:.0f} ms apart"
    rig.row(f"stream TTFB ({pace})", d_ttfb * 1e3, g_ttfb * 1e3, "ms", ".3f")
    rig.row("  added TTFB", None, (g_ttfb - d_ttfb) * 1e3, "ms", ".3f")
    rig.row(
        "event one-way delay, stub send -> client, p50", d_delay * 1e3, g_delay * 1e3, "ms", ".3f"
    )
    rig.row("  added per event, p50", None, (g_delay - d_delay) * 1e3, "ms", ".3f")
    rig.row("event one-way delay, p99", d_p99 * 1e3, g_p99 * 1e3, "ms", ".3f")
    rig.row("  added per event, p99", None, (g_p99 - d_p99) * 1e3, "ms", ".3f")


def big_stream(rig: Rig, gw: Proc, gw_url: str, size: int) -> None:
    idle = gw.status_kib("VmRSS") / 1024
    rig.row("gateway idle RSS (after warm-up)", None, idle, "MiB", ".1f")
    reset = gw.reset_peak_rss()
    place(rig, True, "big")
    direct = client(rig, "drain", rig.stub_url("big"), str(size), direct=True)
    place(rig, False, "big")
    cpu = gw.cpu_seconds()
    via = client(rig, "drain", gw_url + "/big/v1/messages", str(size), direct=False)
    cpu = gw.cpu_seconds() - cpu
    peak = gw.status_kib("VmHWM") / 1024
    assert isinstance(via["bytes"], int)
    assert via["bytes"] >= size, via
    label = f"{via['bytes'] / GiB:.2f} GiB stream"
    note = "" if reset else " (HWM since start)"
    rig.row(f"gateway peak RSS, {label}{note}", None, peak, "MiB", ".1f")
    rig.row("  growth over idle", None, peak - idle, "MiB", ".1f")
    rate = [float(r["bytes"]) / float(r["seconds"]) / MiB for r in (direct, via)]  # type: ignore[arg-type]
    rig.row(f"{label} throughput", rate[0], rate[1], "MiB/s", ",.0f")
    rig.row("  gateway CPU per GiB relayed", None, cpu / (float(via["bytes"]) / GiB), "s", ".2f")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test)")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--auth",
        action="store_true",
        help="every gateway run with auth on (a gateway-issued key); without it, the full "
        "run adds auth-on req/s rows and --quick has auth off",
    )
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 8.0
    avail = cores()
    server_core, load_core = (avail[0], avail[1]) if len(avail) >= 2 else (None, None)
    with tempfile.TemporaryDirectory(prefix="zdr-bench-") as tmp:
        rig = Rig(Path(tmp), server_core, load_core)
        try:
            run(rig, args, seconds)
        finally:
            for proc, _ in rig.stubs.values():
                proc.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(rig.results, indent=2))
    return 0


def run(rig: Rig, args: argparse.Namespace, seconds: float) -> None:
    print(
        f"load average before: {os.getloadavg()[0]:.2f} (others' processes skew req/s, "
        "not CPU per request)",
        flush=True,
    )
    print(
        f"zdr-gateway bench: server under test on core {rig.server_core}, "
        f"load and stubs on core {rig.load_core}; wrk -t1 -c{args.connections}, "
        f"{seconds:.0f} s per run; auth {'on' if args.auth else 'off'}",
        flush=True,
    )
    for mode in ("fast", "paced", "big"):
        port = free_port()
        proc = spawn(f"stub-{mode}", ["-m", "bench.upstream", str(port), mode], core=None)
        rig.stubs[mode] = (proc, port)
        wait_port(proc, port)
        pin(proc.pid, rig.load_core)
    if args.auth:
        enable_auth(rig)
    rig.results["auth"] = 1.0 if args.auth else 0.0
    print(f"  {'metric':<44} {'direct':>10} {'gateway':>10} {'gw/dir':>6}")

    startups = []
    for _ in range(3):
        gw, url, started = start_gateway(rig, tls=False)
        startups.append(started)
        gw.stop()
    gw, url, started = start_gateway(rig, tls=False)
    startups.append(started)
    rig.row("gateway start-up to listening, median", None, statistics.median(startups), "s", ".3f")
    try:
        client(rig, "paced", url + "/paced/v1/messages", "1", direct=False)  # warm-up
        big_stream(rig, gw, url, 64 * MiB if args.quick else GiB)
        paced(rig, url, 5 if args.quick else 20)
        latency(rig, gw, url, "", seconds)
        throughput(rig, gw, url, "", seconds, args.connections)
    finally:
        gw.stop()
    if not args.auth and not args.quick:
        # Real deployments always run auth: its req/s and CPU rows (~40 s more).
        enable_auth(rig)
        gw, url, _ = start_gateway(rig, tls=False)
        try:
            throughput(rig, gw, url, " (auth)", seconds, args.connections)
        finally:
            gw.stop()
            rig.gateway_key = None
    gw, url, _ = start_gateway(rig, tls=True)
    try:
        latency(rig, gw, url, " (TLS)", seconds / 2)
        throughput(rig, gw, url, " (TLS)", seconds, args.connections)
    finally:
        gw.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
