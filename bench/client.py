"""`python -m bench.client MODE URL ...`: a measuring client in its own process.

- `paced URL N`: N streamed requests one after another; for each, the seconds from
  sending the request to the first body byte and to each content_block_delta.
- `drain URL`: one streamed request whose body is read and thrown away as fast as
  possible; bytes and seconds.

Sends the stub's key as x-api-key unless $ZDR_BENCH_API_KEY holds another (a
gateway-issued key, for a gateway with auth on). Prints one JSON document on stdout.
URLs may be https (the gateway's self-signed certificate is not verified: this
measures speed, not trust).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import aiohttp

from bench.upstream import BIG_DELTA, PACED_EVENTS

DELTA = b"event: content_block_delta"
STAMP = b"\n: sent="


def payload(*, stream: bool, max_tokens: int = 16) -> bytes:
    doc = {
        "model": "claude-sonnet-5-5",
        "max_tokens": max_tokens,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say hello in ten words."}],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


STUB_KEY = "stub-upstream-key"
# Where the rig passes this process its credential (not argv: `ps` shows argv).
API_KEY_ENV = "ZDR_BENCH_API_KEY"


def headers(api_key: str = STUB_KEY) -> dict[str, str]:
    """Request headers with `api_key` as x-api-key: the stub's key for direct runs (and
    for a gateway with auth off, which swaps it), a gateway-issued key for a gateway with
    auth on (which refuses a second, disagreeing credential, so never both)."""
    return {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": api_key,
    }


HEADERS = headers()


async def paced(url: str, n: int, hdrs: dict[str, str]) -> dict[str, object]:
    """Per request: seconds to the first body byte, and each delta event's one-way delay
    from the stub's send stamp (CLOCK_MONOTONIC, shared by processes) to its arrival."""
    runs = []
    async with aiohttp.ClientSession() as http:
        for _ in range(n + 1):  # the first one warms the connection pools
            start = time.perf_counter()
            first = None
            delays: list[float] = []
            async with http.post(url, data=payload(stream=True), headers=hdrs, ssl=False) as r:
                assert r.status == 200, r.status
                pending = b""
                async for chunk in r.content.iter_any():
                    arrived = time.monotonic()
                    if first is None:
                        first = time.perf_counter() - start
                    pending += chunk
                    # Events end with "\n\n"; keep an unfinished tail for the next chunk.
                    *events, pending = pending.split(b"\n\n")
                    for event in events:
                        if event.startswith(DELTA):
                            sent = float(event.rsplit(STAMP, 1)[1])
                            delays.append(arrived - sent)
            assert len(delays) == PACED_EVENTS, len(delays)
            runs.append({"ttfb": first, "delays": delays})
    return {"runs": runs[1:]}


async def drain(url: str, total: int, hdrs: dict[str, str]) -> dict[str, object]:
    body = payload(stream=True, max_tokens=total // BIG_DELTA)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as http:
        start = time.perf_counter()
        size = 0
        async with http.post(url, data=body, headers=hdrs, ssl=False) as r:
            assert r.status == 200, r.status
            async for chunk in r.content.iter_chunked(1 << 20):
                size += len(chunk)
        return {"bytes": size, "seconds": time.perf_counter() - start}


def main(argv: list[str]) -> None:
    mode, url = argv[0], argv[1]
    hdrs = headers(os.environ.get(API_KEY_ENV, STUB_KEY))
    if mode == "paced":
        result = asyncio.run(paced(url, int(argv[2]), hdrs))
    elif mode == "drain":
        result = asyncio.run(drain(url, int(argv[2]), hdrs))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
