"""Tamper evidence for the audit trail: a hash chain over events.

Each event gets `seq` (0, 1, 2, … per chain), `prev` (the previous event's
hash; `GENESIS` for seq 0) and `hash` = SHA-256 — or HMAC-SHA256 under
`audit.chain_key` — of the canonical JSON of the event without `hash`.

`verify()` walks a file and reports the first break: a line that is not an
event (truncated write), an edited event (its hash does not match), deleted
events (a `seq` gap), a reordering (`seq` goes back) or a replaced event
(`prev` does not match). A new chain (seq 0 after a restart of a process that
writes to stdout) starts a new segment. Without a key anyone can recompute a
whole chain after an edit; with a key only the key holder can — see
THREAT_MODEL.md (ship lines off-host too: nothing detects a truncated tail).
Break reports name line numbers and hashes, never event contents.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(event: dict[str, Any]) -> bytes:
    body = {k: v for k, v in event.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def digest(event: dict[str, Any], key: bytes | None) -> str:
    data = canonical(event)
    if key is not None:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


class Chain:
    """Seals events in order. Not thread-safe: one per sink, used from the event loop."""

    def __init__(self, key: bytes | None = None, prev: str = GENESIS, seq: int = 0) -> None:
        self.key, self.prev, self.seq = key, prev, seq

    def seal(self, event: dict[str, Any]) -> dict[str, Any]:
        sealed = {**event, "seq": self.seq, "prev": self.prev}
        sealed["hash"] = digest(sealed, self.key)
        self.prev, self.seq = sealed["hash"], self.seq + 1
        return sealed

    @classmethod
    def resume(cls, last_line: str | None, key: bytes | None) -> Chain:
        """Continue after the last event of an existing file (a restart appends to it)."""
        event = _parse(last_line) if last_line else None
        if event is None or not isinstance(event.get("seq"), int):
            return cls(key)
        return cls(key, prev=str(event["hash"]), seq=event["seq"] + 1)


@dataclass(frozen=True, slots=True)
class Report:
    ok: bool
    events: int
    segments: int
    line: int | None = None
    problem: str | None = None
    last_hash: str | None = None
    first_seq: int | None = None


def _parse(line: str) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or "audit" not in event or "hash" not in event:
        return None
    return event


def verify(lines: Iterable[str], key: bytes | None = None, *, mixed: bool = False) -> Report:
    """Check a chain. `mixed`: skip lines that are not audit events (stdout with logs)."""
    events = segments = 0
    prev: str | None = None
    want_seq = 0
    first_seq: int | None = None
    lineno = 0

    def fail(problem: str) -> Report:
        return Report(False, events, segments, lineno, problem, prev, first_seq)

    for lineno, raw in enumerate(lines, start=1):  # noqa: B007 - fail() reads lineno
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        event = _parse(line)
        if event is None:
            if mixed and _is_json_object(line) and '"audit"' not in line:
                continue
            return fail("not a complete audit event (truncated write or foreign line)")
        seq, their_prev = event.get("seq"), event.get("prev")
        if not isinstance(seq, int) or not isinstance(their_prev, str):
            return fail("event has no seq/prev: written without `audit.chain`?")
        if not hmac.compare_digest(digest(event, key), str(event["hash"])):
            return fail("event was edited: its hash does not match its content" + _keyhint(key))
        if seq == 0 and their_prev == GENESIS:
            segments += 1  # a new chain: the writer restarted
        elif prev is None:
            first_seq = seq  # a rotated file starts mid-chain; its anchor is the previous file
            segments += 1
        elif seq > want_seq:
            return fail(
                f"{seq - want_seq} event(s) missing before this line, deleted or moved "
                f"(seq {want_seq - 1} is followed by seq {seq})"
            )
        elif seq < want_seq:
            return fail(
                f"events out of order, moved or replayed (seq {seq} after seq {want_seq - 1})"
            )
        elif their_prev != prev:
            return fail(
                "chain broken: prev does not match the preceding event's hash "
                "(the preceding event was replaced)"
            )
        prev, want_seq = str(event["hash"]), seq + 1
        events += 1
    return Report(True, events, segments, None, None, prev, first_seq)


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _keyhint(key: bytes | None) -> str:
    return "" if key is not None else " (or the chain is keyed: pass --key-env)"
