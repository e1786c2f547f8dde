"""Restoring placeholders in a streamed answer (SSE), chunk by chunk, without buffering.

A chunk with no possible placeholder in it (no `[` before an upper-case letter, a quote
or the chunk's end) and nothing held passes at once, as it is: that is nearly every chunk.
Otherwise the chunk's complete events are rewritten in place, byte for byte outside
the delta strings they change, so event order, names, indexes and the provider's JSON
formatting are what the provider sent:

- a placeholder whole inside one delta is replaced by the original, JSON-escaped for the
  delta's depth (`escaped` in gateway/pii/restore.py);
- a delta that ends with a possible placeholder prefix ("[EM") has it cut off and held
  for the same block's next delta, which gets it in front ("AIL_1] ..." -> original);
  when the block ends first, the held text goes out in one extra delta event of the
  same block, just before the event that ends it (or at the stream's end);
- an event already partly sent (split across network chunks before a `[` arrived) is
  finished with its rewritten remainder: rewriting never touches bytes before the first
  `[`, so the part the client has is still a prefix of the rewritten event.

Covered: Anthropic text_delta, thinking_delta, input_json_delta; OpenAI chat
`delta.content` and `tool_calls[].function.arguments`; OpenAI Responses `delta` of
output text, refusal, reasoning (text and summary) and function-call arguments, held per
(output_index, content_index) and flushed before that part's `.done` event (or any event
that ends the response). Other events get complete placeholders replaced at string depth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.pii.restore import Originals

_CANDIDATE = re.compile(rb'\[(?:[A-Z]|"|$)')
_STRING = re.compile(
    rb'"(text|thinking|partial_json|content|arguments|delta)"\s*:\s*"((?:[^"\\]|\\.)*)"'
)
_ARGUMENTS = re.compile(rb'"arguments"\s*:\s*"((?:[^"\\]|\\.)*)"')
_ANTHROPIC = {
    "text_delta": (b"text", 1),
    "thinking_delta": (b"thinking", 1),
    "input_json_delta": (b"partial_json", 2),
}
_FIELD = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}
_ENDS_ALL = frozenset({"message_delta", "message_stop", "error", "content_block_start"})
_ENVELOPE = ("id", "object", "created", "model", "system_fingerprint")
# Responses streaming: the delta events restored with a carry (JSON string depth of their
# `delta`), and the fields that name their part, copied into a flush event.
_RESPONSES = {
    "response.output_text.delta": 1,
    "response.refusal.delta": 1,
    "response.reasoning_text.delta": 1,
    "response.reasoning_summary_text.delta": 1,
    "response.function_call_arguments.delta": 2,
}
_PART = ("item_id", "output_index", "content_index", "summary_index", "sequence_number")

Slot = tuple[Any, ...]


class RestoreError(Exception):
    """The stream cannot be restored safely (an event beyond the cap); no content inside."""


@dataclass(slots=True)
class _Held:
    raw: bytes
    # What is needed to send it in an event of its own: Anthropic delta type, or the
    # OpenAI chunk envelope.
    meta: Any


class StreamRestorer:
    def __init__(self, originals: Originals, provider: str, max_event: int = 1 << 20) -> None:
        self._o = originals
        self._openai = provider == "openai"
        self._max = max_event
        self._event = b""  # the current, unfinished event
        self._written = 0  # how many of its bytes the client already has
        self._held: dict[Slot, _Held] = {}
        self._sep: bytes | None = None  # b"\n\n", b"\r\n\r\n" or b"\r\r"

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        if not self._held and self._written == len(self._event) and not _CANDIDATE.search(chunk):
            self._track(chunk)
            return chunk
        return self._slow(chunk)

    def finish(self) -> bytes:
        """At the stream's end: whatever is held, then an unfinished event as it came."""
        out = self._flush(None) + self._event[self._written :]
        self._event, self._written = b"", 0
        return out

    # -- event boundaries ------------------------------------------------------------

    def _decide(self, data: bytes) -> None:
        lf, cr = data.find(b"\n"), data.find(b"\r")
        if cr < 0 and lf >= 0:
            self._sep = b"\n\n"
        elif cr >= 0 and (lf < 0 or cr < lf):
            if cr + 1 < len(data):
                self._sep = b"\r\n\r\n" if data[cr + 1] == 0x0A else b"\r\r"
        elif lf >= 0:
            self._sep = b"\n\n"

    def _track(self, chunk: bytes) -> None:
        """Fast path: the chunk went out as it is; remember the unfinished event's bytes."""
        ev = self._event
        data = ev + chunk if ev else chunk
        if self._sep is None:
            self._decide(data)
            if self._sep is None:
                self._keep(data, len(data))
                return
        sep = self._sep
        if not ev and chunk.endswith(sep):
            return
        i = data.rfind(sep, max(0, len(ev) - len(sep) + 1))
        rest = data if i < 0 else data[i + len(sep) :]
        self._keep(rest, len(rest))

    def _keep(self, rest: bytes, written: int) -> None:
        if len(rest) > self._max:
            raise RestoreError("an event exceeds the restore cap")
        self._event, self._written = rest, written

    def _slow(self, chunk: bytes) -> bytes:
        data = self._event + chunk
        written = self._written
        if self._sep is None:
            self._decide(data)
        out: list[bytes] = []
        pos = 0
        sep = self._sep
        while sep is not None:
            i = data.find(sep, pos)
            if i < 0:
                break
            end = i + len(sep)
            ev = data[pos:end]
            new = self._rewrite(ev)
            if written:
                if not new.startswith(ev[:written]):
                    raise RestoreError("rewrite changed bytes already sent")
                new, written = new[written:], 0
            out.append(new)
            pos = end
        rest = data[pos:]
        if rest and not self._held and not _CANDIDATE.search(rest):
            out.append(rest[written:])
            written = len(rest)
        self._keep(rest, written)
        return b"".join(out)

    # -- one complete event ------------------------------------------------------------

    def _rewrite(self, ev: bytes) -> bytes:
        if not self._held and not _CANDIDATE.search(ev):
            return ev
        lines = [ln[5:] for ln in ev.splitlines() if ln.startswith(b"data:")]
        if not lines:
            return ev
        payload = b"\n".join(ln[1:] if ln.startswith(b" ") else ln for ln in lines)
        if payload.strip() == b"[DONE]":
            return self._flush(None) + ev
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return ev
        if not isinstance(obj, dict):
            return ev
        if self._openai:
            kind = obj.get("type")
            if isinstance(kind, str) and kind.startswith("response."):
                return self._responses_event(ev, obj, kind)
            return self._openai_event(ev, obj)
        return self._anthropic_event(ev, obj)

    def _anthropic_event(self, ev: bytes, obj: dict[str, Any]) -> bytes:
        kind = obj.get("type")
        index = obj.get("index")
        if kind == "content_block_delta":
            delta = obj.get("delta")
            dtype = delta.get("type") if isinstance(delta, dict) else None
            target = _ANTHROPIC.get(dtype) if isinstance(dtype, str) else None
            if target is None:
                return self._o.restore_bytes(ev, 1)
            key, depth = target
            return self._splice(ev, [(key, ("a", index), depth, dtype, False)])
        if kind == "content_block_stop":
            return self._flush(("a", index)) + ev
        if kind in _ENDS_ALL:
            return self._flush(None) + self._o.restore_bytes(ev, 1)
        return self._o.restore_bytes(ev, 1)

    def _openai_event(self, ev: bytes, obj: dict[str, Any]) -> bytes:
        choices = obj.get("choices")
        if not isinstance(choices, list):
            return self._whole(ev)
        envelope = {k: obj[k] for k in _ENVELOPE if k in obj}
        targets: list[tuple[bytes, Slot, int, Any, bool]] = []
        finishing: set[Any] = set()
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            ci = choice.get("index", 0)
            final = choice.get("finish_reason") is not None
            if final:
                finishing.add(ci)
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            if isinstance(delta.get("content"), str):
                targets.append((b"content", ("c", ci), 1, envelope, final))
            calls = delta.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    slot = ("t", ci, call.get("index", 0))
                    targets.append((b"arguments", slot, 2, envelope, final))
        new = self._splice(ev, targets) if targets else ev
        flushed = b"".join(self._flush(s) for s in list(self._held) if s[1] in finishing)
        return flushed + new

    def _responses_event(self, ev: bytes, obj: dict[str, Any], kind: str) -> bytes:
        part = obj.get("content_index", obj.get("summary_index"))
        depth = _RESPONSES.get(kind)
        if depth is not None and isinstance(obj.get("delta"), str):
            slot = ("r", kind, obj.get("output_index"), part)
            meta = {"type": kind, **{k: obj[k] for k in _PART if k in obj}}
            return self._splice(ev, [(b"delta", slot, depth, meta, False)])
        if kind.endswith(".done") and "output_index" in obj:
            # This part (or, for output_item.done, the whole item) ends: its held text
            # goes out first, in a delta event of its own.
            index = obj["output_index"]
            ended = [
                s for s in self._held
                if s[0] == "r" and s[2] == index and (part is None or s[3] == part)
            ]  # fmt: skip
            flushed = b"".join(self._flush(s) for s in ended)
            return flushed + self._whole(ev)
        if kind.endswith(".delta") or "output_index" in obj:
            return self._whole(ev)
        # response.completed / failed / incomplete / error: everything held goes out.
        return self._flush(None) + self._whole(ev)

    def _whole(self, ev: bytes) -> bytes:
        """An OpenAI event's complete placeholders replaced where they are, without a
        carry: at string depth 1, and 2 inside `arguments` (JSON in a JSON string, as in
        Responses' function_call_arguments.done, output_item.done and completed)."""
        if b'"arguments"' not in ev:
            return self._o.restore_bytes(ev, 1)
        parts: list[bytes] = []
        pos = 0
        for m in _ARGUMENTS.finditer(ev):
            start, end = m.span(1)
            parts.append(self._o.restore_bytes(ev[pos:start], 1))
            parts.append(self._o.restore_bytes(ev[start:end], 2))
            pos = end
        parts.append(self._o.restore_bytes(ev[pos:], 1))
        return b"".join(parts)

    def _splice(self, ev: bytes, targets: list[tuple[bytes, Slot, int, Any, bool]]) -> bytes:
        """Rewrite the string value of each target's key, in document order per key."""
        by_key: dict[bytes, list[tuple[Slot, int, Any, bool]]] = {}
        for key, slot, depth, meta, final in targets:
            by_key.setdefault(key, []).append((slot, depth, meta, final))
        parts: list[bytes] = []
        pos = 0
        for m in _STRING.finditer(ev):
            queue = by_key.get(m.group(1))
            if not queue:
                continue
            slot, depth, meta, final = queue.pop(0)
            start, end = m.span(2)
            parts.append(ev[pos:start])
            parts.append(self._restore(slot, depth, ev[start:end], meta, final))
            pos = end
        if not parts:
            return ev
        parts.append(ev[pos:])
        return b"".join(parts)

    def _restore(self, slot: Slot, depth: int, raw: bytes, meta: Any, final: bool) -> bytes:
        held = self._held.pop(slot, None)
        if held is not None:
            raw = held.raw + raw
        if b"[" not in raw:
            return raw
        if not final:
            i = raw.rfind(b"[")
            if raw[i:] in self._o.prefixes:
                self._held[slot] = _Held(raw[i:], meta)
                raw = raw[:i]
        return self._o.restore_bytes(raw, depth)

    # -- held text that its block ended on ------------------------------------------

    def _flush(self, slot: Slot | None) -> bytes:
        slots = list(self._held) if slot is None else [slot] if slot in self._held else []
        return b"".join(self._event_for(s, self._held.pop(s)) for s in slots)

    def _event_for(self, slot: Slot, held: _Held) -> bytes:
        nl = (self._sep or b"\n\n")[: len(self._sep or b"\n\n") // 2]
        text = held.raw.decode()
        if not self._openai:
            delta = {"type": held.meta, _FIELD[held.meta]: text}
            data = orjson.dumps({"type": "content_block_delta", "index": slot[1], "delta": delta})
            return b"event: content_block_delta" + nl + b"data: " + data + nl + nl
        if slot[0] == "r":
            data = orjson.dumps({**held.meta, "delta": text})
            name = str(held.meta["type"]).encode()
            return b"event: " + name + nl + b"data: " + data + nl + nl
        if slot[0] == "c":
            choice_delta: dict[str, Any] = {"content": text}
        else:
            choice_delta = {"tool_calls": [{"index": slot[2], "function": {"arguments": text}}]}
        choice = {"index": slot[1], "delta": choice_delta, "finish_reason": None}
        data = orjson.dumps({**held.meta, "choices": [choice]})
        return b"data: " + data + nl + nl
