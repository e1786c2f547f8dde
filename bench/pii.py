"""Cost of pseudonymisation on the request path and of restore on the stream (a
benchmark, not a test).

    python bench/pii.py [N]

Prints, best of 5 runs (CPU time, one core):
- detection + replacement for a 10 KB prompt (prose, code, dates, versions, order
  numbers and a few personal values) with the default categories on (email, phone,
  card, iban, ip); target <= 0.2 ms. The forward stage's re-serialisation of the
  rewritten body is shown on its own line;
- restore per streamed chunk: an ordinary text delta (no `[`), and one whose
  placeholder is split across two deltas; target <= 20 us;
- the stage for a team whose policy is off, and with no `pii:` section at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.context import RequestContext
from gateway.pii.restore import Originals
from gateway.pii.runtime import PiiRuntime
from gateway.pii.settings import PiiSettings
from gateway.pii.stream import StreamRestorer
from gateway.pii.vault import Vault, taken_placeholders
from gateway.pii.walk import anthropic_messages
from gateway.stages.pseudonymise import pseudonymise_stage
from gateway.state import METRICS, PII

DEFAULT = {"email": "pseudonymise", "phone": "pseudonymise", "card": "mask",
           "iban": "pseudonymise", "ip": "pseudonymise"}  # fmt: skip

PROSE = (
    "Thanks for the update on the migration. As discussed on 2026-11-28, the team moved "
    "the billing service to the new cluster at 14:05 UTC and saw latency drop by 12.5% "
    "(p99 from 840 ms to 610 ms). Order 48213 and order 48214 were replayed; invoice "
    "INV-2026-0042 totals $1,234.56. We are on version 3.11.7 of the runtime and 2.31.0 "
    "of the client library, build 20261128.3. Please review the attached notes before "
    "Thursday, and let me know whether the rollout plan still holds for the 3 regions. "
)
CODE = (
    "def retry(fn, attempts=3, delay=0.25):\n    for i in range(attempts):\n"
    "        try:\n            return fn()\n        except TimeoutError:\n"
    "            time.sleep(delay * 2 ** i)\n    raise RuntimeError('gave up')\n"
    "x = [1, 2, 3, 4, 5]; cfg = {'port': 8443, 'timeout': 30}\n"
)
PERSONAL = (
    "Contact Jane at jane.doe@example.com or +1 415-555-2671; the refund goes to "
    "DE89 3704 0044 0532 0130 00, card 4111 1111 1111 1111. Logged from 203.0.113.7. "
)


def prompt(size: int = 10 * 1024) -> str:
    parts: list[str] = []
    n = 0
    while n < size:
        for piece in (PROSE, PROSE, CODE, PROSE, PERSONAL if not parts else PROSE):
            parts.append(piece)
            n += len(piece)
    return "".join(parts)[:size]


def bench(name: str, fn: Callable[[], object], n: int, repeats: int = 5, unit: str = "ms") -> float:
    for _ in range(max(1, n // 10)):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n)
    scale = 1e3 if unit == "ms" else 1e6
    print(f"{name:<62} {best * scale:8.3f} {unit}")
    return best * scale


def detection(n: int) -> None:
    runtime = PiiRuntime(PiiSettings.model_validate({"default": DEFAULT}))
    modes = runtime.modes(None)
    assert modes is not None
    text = prompt()
    doc = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}
    body = json.dumps(doc).encode()

    def run() -> dict[str, Any]:
        fresh = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}
        vault = Vault(runtime.detectors, modes, taken_placeholders(body, fresh))
        anthropic_messages(fresh, vault.replace)
        return fresh

    out = run()
    assert "jane.doe@example.com" not in json.dumps(out)
    bench(f"detect + replace, {len(text)} chars, default categories", run, n)
    bench("  forward's re-serialisation of the rewritten body", lambda: json.dumps(out), n)
    plain = text
    for value in ("jane.doe@example.com", "+1 415-555-2671", "4111 1111 1111 1111",
                  "DE89 3704 0044 0532 0130 00", "203.0.113.7"):  # fmt: skip
        plain = plain.replace(value, "x")
    bench(
        "  same text without the personal values (scan only)",
        lambda: Vault(runtime.detectors, modes, set()).replace(plain),
        n,
    )


def restore(n: int) -> None:
    originals = Originals({"[EMAIL_1]": "jane.doe@example.com", "[PHONE_1]": "+1 415-555-2671"})

    def delta(text: str) -> bytes:
        data = {"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}}  # fmt: skip
        return b"event: content_block_delta\ndata: " + json.dumps(data).encode() + b"\n\n"

    plain = delta(" the rollout plan still holds for the three regions")
    split = [delta("Write to [EMA"), delta("IL_1] today")]
    r = StreamRestorer(originals, "anthropic")
    bench("restore: ordinary text delta chunk (no '[')", lambda: r.feed(plain), n * 50, unit="µs")

    def two() -> None:
        for chunk in split:
            r.feed(chunk)

    per_pair = bench("restore: placeholder split across 2 deltas (a pair)", two, n * 10, unit="µs")
    print(f"{'  = per chunk':<62} {per_pair / 2:8.3f} µs")


def off(n: int) -> None:
    class App(dict[Any, Any]):
        pass

    class Request:
        def __init__(self, app: App) -> None:
            self.app = app

    ctx = RequestContext(request_id="b")
    ctx.json = {"messages": []}
    settings = PiiSettings.model_validate({"default": DEFAULT, "teams": {"t": "off"}})
    app_off = App({PII: PiiRuntime(settings), METRICS: None})
    app_none = App({METRICS: None})

    def stage(request: Any) -> None:
        coro = pseudonymise_stage(request, ctx)
        with contextlib.suppress(StopIteration):
            coro.send(None)

    from gateway.auth.principal import Principal

    ctx.principal = Principal(key_id="k", team="t", source="key")
    ctx.route = object()  # type: ignore[assignment]
    bench("stage, team policy off", lambda: stage(Request(app_off)), n * 50, unit="µs")
    bench("stage, no pii section", lambda: stage(Request(app_none)), n * 50, unit="µs")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    detection(n)
    restore(n)
    off(n)
    asyncio.run(asyncio.sleep(0))


if __name__ == "__main__":
    main()
