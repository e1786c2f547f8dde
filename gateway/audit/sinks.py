"""Where audit lines go: stdout, encrypted segments (writer.SegmentSink), or nowhere.

The segment sink's files are the ONLY files the gateway process ever writes
(THREAT_MODEL.md); see gateway/audit/writer.py.
"""

from __future__ import annotations

import sys
from typing import IO, Protocol


class Sink(Protocol):
    def write(self, lines: list[str]) -> None:
        """Whole lines (no newlines), in one write."""

    def last_line(self) -> str | None: ...
    def close(self) -> None: ...


class NullSink:
    def write(self, lines: list[str]) -> None:
        pass

    def last_line(self) -> str | None:
        return None

    def close(self) -> None:
        pass


class StreamSink:
    """JSON lines on a text stream (stdout), flushed per write."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    def write(self, lines: list[str]) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write("\n".join(lines) + "\n")
        stream.flush()

    def last_line(self) -> str | None:
        return None  # a new process starts a new chain segment on stdout

    def close(self) -> None:
        pass
