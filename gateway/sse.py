"""Incremental Server-Sent Events splitter for reading metadata off a passing stream.

It never holds more than one event (capped at `max_event_bytes`): bytes arrive
in whatever chunks the network gives, events may be split anywhere, and only
the events a caller asks for are handed over (with their data) — every other
event is skipped without being decoded.
"""

from __future__ import annotations

from collections.abc import Callable

_SEPARATORS = (b"\r\n\r\n", b"\n\n", b"\r\r")


class SSESplitter:
    def __init__(
        self,
        wanted: frozenset[bytes],
        on_event: Callable[[bytes, bytes], None],
        max_event_bytes: int = 1 << 20,
    ) -> None:
        self._wanted = wanted
        self._on_event = on_event
        self._max = max_event_bytes
        self._buf = bytearray()
        # Set when an event outgrew the cap: drop bytes until the next boundary.
        self._skipping = False
        self._cr = False  # seen a '\r': the stream may use CRLF or CR line ends

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self._cr and b"\r" in chunk:
            self._cr = True
        buf = self._buf
        # Resume the boundary search just before the old end: a separator may straddle chunks.
        start = max(0, len(buf) - 3)
        buf += chunk
        while True:
            end, sep_len = self._boundary(buf, start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            else:
                self._dispatch(bytes(buf[:end]))
            del buf[: end + sep_len]
            start = 0
        if len(buf) > self._max:
            buf.clear()
            self._skipping = True

    def _boundary(self, buf: bytearray, start: int) -> tuple[int, int]:
        if not self._cr:
            return buf.find(b"\n\n", start), 2
        best, best_len = -1, 0
        for sep in _SEPARATORS:
            i = buf.find(sep, start)
            if i >= 0 and (best < 0 or i < best):
                best, best_len = i, len(sep)
        return best, best_len

    def _dispatch(self, raw: bytes) -> None:
        if raw.startswith(b"event:"):
            # Fast path: most events (text deltas) are not wanted; skip them undecoded.
            end = raw.find(b"\n")
            if self._cr:
                cr = raw.find(b"\r")
                end = cr if end < 0 or 0 <= cr < end else end
            if raw[6 : end if end >= 0 else len(raw)].strip() not in self._wanted:
                return
        event = b"message"
        data: list[bytes] = []
        for line in raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
            if line.startswith(b"event:"):
                event = line[6:].strip()
                if event not in self._wanted:
                    return
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
        if event in self._wanted:
            self._on_event(event, b"\n".join(data))
