"""Tamper evidence for the audit trail: hash chains over events (`HashChain`).

Every writer (one gateway process; a worker) seals its events into its own
chain: `chain` (a random id per writer), `seq` (0, 1, 2, …), `prev` (the hash of
the chain's previous event) and `hash` = SHA-256 — or HMAC-SHA256 under
`audit.chain_key` — of the canonical JSON of the event without `hash`. A new
chain starts at seq 0 with `prev` = `GENESIS`, or, for the file sink, the hash
of the last event its stream wrote before (read back from its segments), so a
restart links to what came before. Chains of several writers may interleave in
one log stream. `Verifier` is the same check one line at a time, for readers
that know more than the lines (verifydir.py, over encrypted segments).

`verify()` walks the lines in order and reports the first break: a line that is
not an event (truncated write), an edited event (its hash does not match), a
`seq` gap (events deleted or moved), a `seq` going back (moved or replayed), a
replaced event (`prev` does not match), or a chain that starts from an event
that is not there (deleted before a restart, or the previous file is missing).
Without a key anyone can recompute a whole chain after an edit; with a key only
the key holder can. Nothing detects a removed tail: ship lines off-host (see
THREAT_MODEL.md). Reports name line numbers and hashes, never event contents.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64


def _canonical_bytes(event: dict[str, Any]) -> bytes:
    # Compact, keys sorted, UTF-8. For the events the gateway writes (ASCII values,
    # integers, floats with three decimals) this is byte for byte what
    # json.dumps(sort_keys=True, separators=(",", ":")) gives, at an eighth of the cost.
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def canonical(event: dict[str, Any]) -> bytes:
    return _canonical_bytes({k: v for k, v in event.items() if k != "hash"})


def _hash(data: bytes, key: bytes | None) -> str:
    if key is not None:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def digest(event: dict[str, Any], key: bytes | None) -> str:
    return _hash(canonical(event), key)


class HashChain:
    """Seals events in order. Not thread-safe: one per writer, used from the event loop."""

    def __init__(self, key: bytes | None = None, prev: str = GENESIS) -> None:
        self.key, self.prev, self.seq = key, prev, 0
        self.id = secrets.token_hex(6)

    def seal(self, event: dict[str, Any]) -> dict[str, Any]:
        sealed = {**event, "chain": self.id, "seq": self.seq, "prev": self.prev}
        sealed["hash"] = digest(sealed, self.key)
        self.prev, self.seq = sealed["hash"], self.seq + 1
        return sealed

    def seal_line(self, event: dict[str, Any]) -> str:
        """`seal` straight to its JSON line: the canonical text is hashed and written, so
        the event is serialised once (keys sorted, `hash` last) instead of twice."""
        data = _canonical_bytes({**event, "chain": self.id, "seq": self.seq, "prev": self.prev})
        hashed = _hash(data, self.key)
        self.prev, self.seq = hashed, self.seq + 1
        return f'{data[:-1].decode()},"hash":"{hashed}"}}'

    @classmethod
    def resume(cls, last_line: str | None, key: bytes | None) -> HashChain:
        """A new chain linked to the last event of an existing file (a restart appends)."""
        event = _parse(last_line) if last_line else None
        return cls(key, prev=str(event["hash"]) if event else GENESIS)


@dataclass(frozen=True, slots=True)
class Report:
    ok: bool
    events: int
    chains: int
    line: int | None = None
    problem: str | None = None
    # Chains whose start is not in these lines (allowed with `partial`): id -> first seq.
    partial: tuple[tuple[str, int], ...] = ()


def _parse(line: str) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or "audit" not in event or "hash" not in event:
        return None
    return event


def verify(
    lines: Iterable[str], key: bytes | None = None, *, mixed: bool = False, partial: bool = False
) -> Report:
    """Check the chains in `lines`. `mixed`: skip JSON lines that are not audit events
    (stdout with logs). `partial`: the lines continue an earlier file, so chains may
    start mid-way (each such start is listed in the report)."""
    v = Verifier(key, mixed=mixed, partial=partial)
    for lineno, raw in enumerate(lines, start=1):
        problem = v.feed(raw.rstrip("\n"))
        if problem is not None:
            return Report(False, v.events, len(v.heads), lineno, problem, tuple(v.started))
    return Report(True, v.events, len(v.heads), None, None, tuple(v.started))


class Verifier:
    """`verify` one line at a time, for readers that know more than the lines (segments).

    `skip()`: the next event may continue its chain past a gap or start mid-way, once
    (the events before it were expired by retention, or one could not be read and is
    already reported). After a break the verifier follows the breaking event (unless it
    goes back in its chain), so each break is reported once."""

    def __init__(self, key: bytes | None, *, mixed: bool = False, partial: bool = False):
        self.key, self.mixed, self.partial = key, mixed, partial
        self.heads: dict[str, tuple[int, str]] = {}  # chain id -> (next seq, last hash)
        self.seen: set[str] = set()
        self.started: list[tuple[str, int]] = []
        self.events = 0
        self._skip = False

    def skip(self) -> None:
        self._skip = True

    def feed_sealed(self, text: bytes) -> str | None:
        """`feed` for a line as `HashChain.seal_line` wrote it (a decrypted record): the
        hash is checked over the bytes before it, with no second serialisation."""
        # PERF: audit verify DIR ~2x faster (bench/audit_segments.py: verify events/s).
        if text[-75:-66] != b',"hash":"' or text[-2:] != b'"}':
            return self.feed(text.decode(errors="replace"))
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            return self.feed(text.decode(errors="replace"))
        if not isinstance(event, dict) or "audit" not in event:
            return self.feed(text.decode(errors="replace"))
        canonical = text[:-75] + b"}"
        return self._check(event, canonical)

    def feed(self, line: str) -> str | None:
        if not line.strip():
            return None
        event = _parse(line)
        if event is None:
            if self.mixed and _is_json_object(line) and '"audit"' not in line:
                return None
            return "not a complete audit event (truncated write or foreign line)"
        return self._check(event, None)

    def _check(self, event: dict[str, Any], canonical_bytes: bytes | None) -> str | None:
        chain, seq, prev = event.get("chain"), event.get("seq"), event.get("prev")
        if not isinstance(chain, str) or not isinstance(seq, int) or not isinstance(prev, str):
            return "event has no chain/seq/prev: written without `audit.chain`?"
        want = (
            digest(event, self.key) if canonical_bytes is None else _hash(canonical_bytes, self.key)
        )
        if not hmac.compare_digest(want, str(event["hash"])):
            hint = "" if self.key is not None else " (or the chain is keyed: pass --key-env)"
            self.heads[chain] = (seq + 1, str(event["hash"]))  # the next event still links
            return "event was edited: its hash does not match its content" + hint
        skip, self._skip = self._skip, False
        problem = None if skip else self._link(chain, seq, prev)
        if skip and chain not in self.heads:
            self.started.append((chain, seq))
        head = self.heads.get(chain)
        if head is None or seq >= head[0]:  # an event moved back is reported, not followed
            self.heads[chain] = (seq + 1, str(event["hash"]))
        self.seen.add(str(event["hash"]))
        self.events += 1
        return problem

    def _link(self, chain: str, seq: int, prev: str) -> str | None:
        head = self.heads.get(chain)
        if head is None:
            partial = self.partial
            if seq != 0 and not partial:
                return (
                    f"chain {chain} starts at seq {seq}: its first {seq} event(s) are not "
                    "here (deleted, or in an earlier file: pass it first, or --partial)"
                )
            if seq == 0 and prev != GENESIS and prev not in self.seen and not partial:
                return (
                    f"chain {chain} links to an event that is not here (events deleted "
                    "before a restart, or an earlier file: pass it first, or --partial)"
                )
            if seq != 0 or (prev != GENESIS and prev not in self.seen):
                self.started.append((chain, seq))
            return None
        want, last = head
        if seq > want:
            return (
                f"{seq - want} event(s) missing before this line, deleted or moved "
                f"(chain {chain}: seq {want - 1} is followed by seq {seq})"
            )
        if seq < want:
            return (
                f"events out of order, moved or replayed "
                f"(chain {chain}: seq {seq} after seq {want - 1})"
            )
        if prev != last:
            return (
                "chain broken: prev does not match the preceding event's hash "
                "(the preceding event was replaced)"
            )
        return None


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
