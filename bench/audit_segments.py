"""Cost of the encrypted audit trail (a benchmark, not a test).

    python bench/audit_segments.py [N]

Prints, per audit event (a realistic one, built from a RequestContext, sealed into
the hash chain, written one write per event as the gateway does when requests end in
different loop turns, and 16 per write as when they end in one):
- plaintext: the stdout sink's path (JSON line to an open file);
- encrypted: the file sink (AES-256-GCM record in a segment), and the difference;
then how fast `audit verify DIR` reads the encrypted events back (decrypt, parse,
check every hash), in events per second. Times are CPU time of this process (user +
system, so the write syscalls count): on a machine shared with other work, wall time
measures the neighbours. Targets (issue 14): encrypted ≤ plaintext + 15 µs; verify
≥ 20,000 events/s.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.audit.crypto import AuditKey, Keyring, parse_key
from gateway.audit.settings import AuditSettings
from gateway.audit.sinks import Sink, StreamSink
from gateway.audit.trail import Auditor
from gateway.audit.verifydir import verify_dir
from gateway.audit.writer import SegmentSink
from gateway.auth.principal import Principal
from gateway.context import RequestContext, Usage

KEY = Keyring([AuditKey.of("bench", parse_key("q8OQhtN8nq1dUdMmgF8zmS2kD+4rUO6fAqlXh8y0Ldc="))])
CHAIN_KEY = "bench-chain-key-0123456789"


def context(i: int) -> RequestContext:
    c = RequestContext(request_id=f"gw_{i:024x}", started=time.monotonic() - 0.2)
    c.principal = Principal(key_id="k_2026_01_team_a", team="payments", source="key")
    c.model_label, c.stream, c.status = "claude-sonnet-5-5", True, 200
    c.usage = Usage(1234, 567, 0, 890)
    c.bytes_in, c.bytes_out, c.ttfb, c.upstream_status = 2345, 45678, 0.31, 200
    c.upstream_request_id = "req_011CVabcdefghijklmnop"
    return c


def one_round(auditor: Auditor, n: int, ctxs: list[RequestContext]) -> float:
    """µs per event: build + seal + (encrypt) + write, len(ctxs) events per write."""
    start = time.process_time()
    for _ in range(n // len(ctxs)):
        auditor.sink.write([auditor.line(c) for c in ctxs])
    return (time.process_time() - start) / (n // len(ctxs) * len(ctxs)) * 1e6


def compare(
    sinks: dict[str, Callable[[Path], Sink]], tmp: Path, n: int, batch: int
) -> dict[str, float]:
    """Best of 7 rounds each, the sinks taking turns: a busy machine (other processes on
    the cores) slows both alike instead of whichever happened to run second."""
    auditors = {}
    for name, make in sinks.items():
        d = tmp / f"{name}-{batch}"
        d.mkdir()
        auditors[name] = Auditor(AuditSettings(chain_key=CHAIN_KEY), make(d))
    ctxs = [context(i) for i in range(batch)]
    best = dict.fromkeys(sinks, float("inf"))
    for _ in range(7):
        for name, auditor in auditors.items():
            best[name] = min(best[name], one_round(auditor, n, ctxs))
    for auditor in auditors.values():
        auditor.sink.close()
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        files: list[object] = []

        def plain(d: Path) -> Sink:
            f = (d / "audit.jsonl").open("w")  # the stdout sink's write, to a real file
            files.append(f)
            return StreamSink(f)

        def encrypted(d: Path) -> Sink:
            return SegmentSink(str(d), KEY)

        for batch in (1, 16):
            r = compare({"plain": plain, "encrypted": encrypted}, tmp, n, batch)
            p, e = r["plain"], r["encrypted"]
            print(
                f"audit event, {batch:>2} per write: plaintext {p:5.1f} µs, encrypted "
                f"{e:5.1f} µs, difference {e - p:+5.1f} µs (target ≤ +15)"
            )
        d = tmp / "verify"
        d.mkdir()
        sink = SegmentSink(str(d), KEY, rotate_bytes=8 << 20)
        auditor = Auditor(AuditSettings(chain_key=CHAIN_KEY), sink)
        total = max(n * 5, 50000)
        ctxs = [context(i) for i in range(16)]
        for _ in range(total // 16):
            sink.write([auditor.line(c) for c in ctxs])
        sink.close()
        size = sum(f.stat().st_size for f in d.iterdir())
        best = 0.0
        for _ in range(3):
            start = time.process_time()
            result = verify_dir(str(d), KEY, CHAIN_KEY.encode())
            best = max(best, result.events / (time.process_time() - start))
            assert result.ok
            assert result.events == total // 16 * 16
        print(
            f"audit verify DIR: {best:,.0f} encrypted events/s ({result.events} events, "
            f"{result.segments} segments, {size / 1e6:.1f} MB) (target ≥ 20,000/s)"
        )
        print(f"segment bytes per event: {size / result.events:.0f} (plaintext line: ", end="")
        print(f"{len(auditor.line(ctxs[0]))} bytes)")
        os.sync()


if __name__ == "__main__":
    main()
