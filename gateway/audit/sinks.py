"""Where audit lines go: stdout, an append-only file, or nowhere.

The file sink is the ONLY file the gateway process ever opens for writing
(THREAT_MODEL.md). It is opened once at start-up with O_APPEND (whole lines go
in one write, so concurrent appenders cannot interleave within a line) and mode
0600, and it continues the hash chain from the file's last line.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Protocol

TAIL_BYTES = 64 * 1024


class Sink(Protocol):
    def write(self, lines: str) -> None:
        """Whole lines, each ending in a newline, in one write."""

    def last_line(self) -> str | None: ...
    def close(self) -> None: ...


class NullSink:
    def write(self, lines: str) -> None:
        pass

    def last_line(self) -> str | None:
        return None

    def close(self) -> None:
        pass


class StreamSink:
    """JSON lines on a text stream (stdout), flushed per write."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    def write(self, lines: str) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(lines)
        stream.flush()

    def last_line(self) -> str | None:
        return None  # a new process starts a new chain segment on stdout

    def close(self) -> None:
        pass


class FileSink:
    def __init__(self, path: str, *, fsync: bool = False) -> None:
        self.path = path
        self._fsync = fsync
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(path, flags, 0o600)

    def write(self, lines: str) -> None:
        data = lines.encode()
        written = os.write(self._fd, data)
        if written != len(data):  # a short write on a full disk: finish or fail loudly
            os.write(self._fd, data[written:])
        if self._fsync:
            os.fsync(self._fd)

    def last_line(self) -> str | None:
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read().decode(errors="replace")
        lines = [line for line in tail.splitlines() if line.strip()]
        return lines[-1] if lines else None

    def close(self) -> None:
        os.close(self._fd)
