"""Bedrock's InvokeModel event stream (`application/vnd.amazon.eventstream`), read as it passes.

Frames: a 12-byte prelude (total length, headers length, CRC32), headers, payload,
CRC32. botocore's `EventStreamBuffer` re-assembles frames split across reads and
checks both CRCs. A `chunk` event's payload is `{"bytes": base64(Anthropic event
JSON)}` (plus, sometimes, a random-length `"p"` padding field); an exception
frame (`:message-type: exception`) names its kind in `:exception-type`.

- `EventStreamToSSE` turns it into Anthropic SSE for an Anthropic client, one
  event per frame as soon as the frame is whole: nothing is held beyond the
  frame being assembled.
- `EventStreamUsage` reads usage from the frames of a stream passed back byte
  for byte (cloud-native clients), keeping nothing but the counts.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import orjson
from botocore.eventstream import (
    _PRELUDE_LENGTH,
    EventStreamBuffer,
    EventStreamMessage,
    ParserError,
)
from multidict import CIMultiDict

from gateway.providers.anthropic import AnthropicStreamUsage
from gateway.providers.base import UsageReader
from gateway.providers.cloud import ResponseView, UpstreamResponse
from gateway.providers.cloud_errors import anthropic_error, bedrock_error

# Distinct header blocks seen (a stream has two or three: chunk, exception kinds).
_HEADER_CACHE_MAX = 64
_headers_seen: dict[bytes, dict[str, Any]] = {}
# The event type is the first member of every Anthropic event; read without a parse.
_TYPE = re.compile(rb'^\s*\{\s*"type"\s*:\s*"([a-z_]{1,40})"')


class FrameBuffer(EventStreamBuffer):  # type: ignore[misc]
    """botocore's buffer (re-assembly, both CRCs checked, lengths bounded), with each
    distinct header block parsed once.

    PERF: botocore parses headers byte by byte in Python, 3 headers a frame: 60 % of
    its decoding time. Every chunk frame of a stream carries the same header bytes, so
    their parse is kept (read-only, at most 64 distinct blocks); bench.clouds.
    """

    def _parse_headers(self) -> dict[str, Any]:
        raw = self._data[_PRELUDE_LENGTH : self._prelude.headers_end]
        headers = _headers_seen.get(raw)
        if headers is None:
            headers = super()._parse_headers()
            if len(_headers_seen) < _HEADER_CACHE_MAX:
                _headers_seen[raw] = headers
        return headers


def events(buffer: EventStreamBuffer) -> Iterator[tuple[bytes, bytes]]:
    """(SSE event name, data) for each whole frame in `buffer`; an error ends the stream."""
    try:
        for message in buffer:
            yield decode(message)
    except ParserError:
        # A CRC or length that does not add up: the rest cannot be trusted.
        yield b"error", anthropic_error("api_error", "The Bedrock event stream was corrupted.")


def decode(message: EventStreamMessage) -> tuple[bytes, bytes]:
    headers: dict[str, Any] = message.headers
    kind = headers.get(":message-type")
    if kind == "event":
        if headers.get(":event-type") != "chunk":
            return b"", b""
        data = _chunk_data(message.payload)
        if data is None:
            return b"error", anthropic_error("api_error", "Bedrock sent an unreadable event.")
        m = _TYPE.match(data)
        name = m.group(1) if m else b"message"
        if b"\n" in data or b"\r" in data:
            # An SSE data line ends at a newline: re-encode the event on one line.
            data = orjson.dumps(orjson.loads(data))
        return name, data
    error_type = headers.get(":exception-type") or headers.get(":error-code")
    _, err, message_text = bedrock_error(500, str(error_type or ""), message.payload)
    return b"error", anthropic_error(err, message_text)


def _chunk_data(payload: bytes) -> bytes | None:
    try:
        doc = orjson.loads(payload)
        return base64.b64decode(doc["bytes"], validate=True)
    except (ValueError, KeyError, TypeError):
        return None


class EventStreamToSSE(ResponseView):
    """A 200 InvokeModel stream as the Anthropic SSE stream an Anthropic client expects.

    `usage` reads each event as it is decoded. PERF: the SSE bytes just built are not
    split again to find them (bench.clouds: ~0.1 ms of a streamed request).
    """

    def __init__(self, resp: UpstreamResponse) -> None:
        super().__init__(resp, resp.status, CIMultiDict({"content-type": "text/event-stream"}))
        self._buffer = FrameBuffer()
        self._ended = False
        self.usage = AnthropicStreamUsage()

    def translate(self, chunk: bytes) -> bytes:
        if self._ended:
            return b""
        self._buffer.add_data(chunk)
        out = []
        for name, data in events(self._buffer):
            if not name:
                continue
            self.usage._event(name, data)
            out.append(b"event: " + name + b"\ndata: " + data + b"\n\n")
            if name == b"error":
                # An exception frame is the stream's last word.
                self._ended = True
                break
        return b"".join(out)


class DecodedUsage(UsageReader):
    """The usage `EventStreamToSSE` read while translating (nothing left to parse)."""

    def __init__(self, inner: AnthropicStreamUsage) -> None:
        self._inner = inner
        self.usage = inner.usage
        self.stream_error = None

    def feed(self, chunk: bytes) -> None:
        pass

    def finish(self) -> None:
        self._inner.finish()
        self.usage = self._inner.usage
        self.stream_error = self._inner.stream_error


class EventStreamUsage(UsageReader):
    """Usage from event stream frames the client receives unchanged."""

    def __init__(self) -> None:
        self._inner = AnthropicStreamUsage()
        self.usage = self._inner.usage
        self.stream_error = None
        self._buffer = FrameBuffer()
        self._ended = False

    def feed(self, chunk: bytes) -> None:
        if self._ended:
            return
        self._buffer.add_data(chunk)
        for name, data in events(self._buffer):
            if name:
                self._inner._event(name, data)
            if name == b"error":
                self._ended = True
                return

    def finish(self) -> None:
        self._inner.finish()
        self.usage = self._inner.usage
        self.stream_error = self._inner.stream_error
