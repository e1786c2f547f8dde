"""Cost of verifying a gateway key on the hot path (a benchmark, not a test).

    python bench/auth_verify.py [N]

Prints µs per call for: `tokens.verify` with keys parsed once at load (what the
gateway does), the same including credential extraction and the revocation
lookup, and — for contrast — verification that re-parses the PEM on every call
(what the gateway avoids).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from multidict import CIMultiDict, MultiDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.auth import tokens
from gateway.auth.authenticator import Authenticator
from gateway.auth.credentials import extract
from gateway.auth.keyset import (
    KeySet,
    load_private_key,
    load_public_key,
    write_key_pair,
)
from gateway.auth.mtls import MTLSMap
from gateway.auth.principal import Limits
from gateway.auth.revocation import Revocations
from gateway.auth.settings import AuthSettings


def bench(name: str, fn: Callable[[], object], n: int, repeats: int = 5) -> float:
    """Best of `repeats` runs of n calls: the least disturbed by other processes."""
    for _ in range(min(n // 10, 1000)):  # warm up
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    print(f"{name:<52} {best:8.1f} µs/op   (best of {repeats} x {n} calls)")
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    with tempfile.TemporaryDirectory() as tmp:
        private_path, public_path = write_key_pair(tmp, "bench")
        private = load_private_key(private_path)
        keyset = KeySet({"bench": load_public_key(public_path)})
        now = int(time.time())
        claims = tokens.KeyClaims(
            key_id="bench-key-1",
            team="research",
            issued_at=now,
            not_before=now,
            expires_at=now + 3600,
            endpoints=("messages", "count_tokens", "models"),
            models=("claude-sonnet-*", "claude-haiku-*"),
            max_tokens=4096,
            limits=Limits(rpm=600, input_tpm=100_000, output_tpm=20_000, concurrency=8),
        )
        key = tokens.issue(claims, private, "bench")
        revoked = Revocations([f"old-{i}" for i in range(10_000)])
        headers = CIMultiDict({"authorization": f"Bearer {key}", "anthropic-version": "x"})
        query: MultiDict[str] = MultiDict()
        print(f"key length: {len(key)} bytes; revocation list: 10000 ids")
        sig = private.sign(b"x" * 400)
        raw_key = keyset["bench"]
        bench("raw Ed25519 signature check (the floor)", lambda: raw_key.verify(sig, b"x" * 400), n)
        fast = bench(
            "verify (keys parsed once)",
            lambda: tokens.verify(key, keyset, time.time(), revoked),
            n,
        )
        bench(
            "extract + verify + revocation lookup",
            lambda: tokens.verify(extract(headers, query) or "", keyset, time.time(), revoked),
            n,
        )
        slow = bench(
            "verify re-parsing the PEM every call (avoided)",
            lambda: tokens.verify(
                key, KeySet({"bench": load_public_key(public_path)}), time.time(), revoked
            ),
            max(n // 4, 1),
        )
        print(f"parsing once saves {slow - fast:.1f} µs per request ({slow / fast:.1f}x)")
        auth = Authenticator(AuthSettings(), keyset, revoked, {}, MTLSMap([]))
        loop = asyncio.new_event_loop()
        cached = bench(
            "Authenticator, key seen before (verified-key cache)",
            lambda: loop.run_until_complete(auth.authenticate(key)),
            n,
        )
        baseline = bench(
            "event-loop round trip alone (subtract)", lambda: loop.run_until_complete(_noop()), n
        )
        loop.close()
        print(f"a repeat key costs ~{max(cached - baseline, 0):.1f} µs instead of {fast:.1f} µs")
        bench(
            "Authenticator.gateway_key, seen before (the stage's call)",
            lambda: auth.gateway_key(key),
            n,
        )


async def _noop() -> None:
    return None


if __name__ == "__main__":
    main()
