"""Restoring placeholders in a Bedrock event stream (`application/vnd.amazon.eventstream`)
that a cloud-native client (AnthropicBedrock, Claude Code in Bedrock mode) receives.

The stream is a run of frames: a 12-byte prelude (total length, headers length, CRC32),
headers, payload, CRC32 of all before it. A `chunk` frame's payload is
`{"bytes": base64(Anthropic event JSON)}`, sometimes with a `"p"` padding field.

Frame by frame, as each one is whole:

- a frame that needs no change (no possible placeholder in its event, nothing held)
  goes out byte for byte, as Bedrock sent it;
- a chunk frame whose event has a placeholder is rebuilt around the restored event:
  the same header bytes, the same padding, a new length and new CRCs. The events
  themselves are restored by the SSE restorer (gateway/pii/stream.py), so a placeholder
  split across two deltas (two frames) is restored exactly; its held prefix, when the
  block ends first, goes out in one extra chunk frame of the same block.

Only the frame being assembled is held (at most `max_frame` bytes); a frame whose CRC
does not add up is passed on untouched, for the client to reject as it would Bedrock's.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct

import orjson

from gateway.pii.restore import Originals
from gateway.pii.stream import RestoreError, StreamRestorer

EVENT_STREAM = "application/vnd.amazon.eventstream"
_PRELUDE = 12
_CHUNK = b"\x0b:event-type\x07\x00\x05chunk"
_TYPE = re.compile(rb'^\s*\{\s*"type"\s*:\s*"([a-z_]{1,40})"')
# The headers of an extra frame: those of a chunk event, as Bedrock sends them.
_CHUNK_HEADERS = b"".join(
    bytes([len(n)]) + n + b"\x07" + struct.pack(">H", len(v)) + v
    for n, v in (
        (b":event-type", b"chunk"),
        (b":content-type", b"application/json"),
        (b":message-type", b"event"),
    )
)


def frame(headers: bytes, payload: bytes) -> bytes:
    prelude = struct.pack(">II", _PRELUDE + len(headers) + len(payload) + 4, len(headers))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + headers + payload
    return message + struct.pack(">I", binascii.crc32(message))


class EventStreamRestorer:
    def __init__(self, originals: Originals, max_frame: int = 1 << 20) -> None:
        self._events = StreamRestorer(originals, "anthropic", max_frame)
        self._max = max_frame
        self._buf = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._buf + chunk if self._buf else chunk
        out: list[bytes] = []
        pos = 0
        while len(data) - pos >= _PRELUDE:
            (total,) = struct.unpack_from(">I", data, pos)
            if total > self._max or total < _PRELUDE + 4:
                raise RestoreError("an event stream frame exceeds the restore cap")
            if len(data) - pos < total:
                break
            out.append(self._frame(data[pos : pos + total]))
            pos += total
        self._buf = data[pos:]
        return b"".join(out)

    def finish(self) -> bytes:
        """At the stream's end: held text in frames of its own, then any partial frame."""
        rest, self._buf = self._buf, b""
        return self._frames(self._events.finish(), b"", _CHUNK_HEADERS) + rest

    def _frame(self, raw: bytes) -> bytes:
        (headers_len,) = struct.unpack_from(">I", raw, 4)
        headers = raw[_PRELUDE : _PRELUDE + headers_len]
        if _CHUNK not in headers or struct.unpack_from(">I", raw, len(raw) - 4)[0] != (
            binascii.crc32(raw[:-4])
        ):
            return raw
        try:
            payload = orjson.loads(raw[_PRELUDE + headers_len : -4])
            event = base64.b64decode(payload["bytes"], validate=True)
        except (ValueError, KeyError, TypeError):
            return raw
        if b"\n" in event or b"\r" in event:
            event = orjson.dumps(orjson.loads(event))  # one SSE data line
        m = _TYPE.match(event)
        name = m.group(1) if m else b"message"
        sse = b"event: " + name + b"\ndata: " + event + b"\n\n"
        restored = self._events.feed(sse)
        if restored == sse:
            return raw  # byte for byte
        padding = payload.get("p") if isinstance(payload, dict) else None
        return self._frames(restored, padding, headers)

    def _frames(self, sse: bytes, padding: object, headers: bytes) -> bytes:
        out = []
        for ev in sse.split(b"\n\n"):
            line = next((x for x in ev.split(b"\n") if x.startswith(b"data: ")), None)
            if line is None:
                continue
            doc: dict[str, object] = {"bytes": base64.b64encode(line[6:]).decode()}
            if isinstance(padding, str) and padding:
                doc["p"] = padding
            out.append(frame(headers, orjson.dumps(doc)))
        return b"".join(out)
