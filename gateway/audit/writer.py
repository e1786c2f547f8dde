"""The file sink: encrypted segments in `audit.dir`, rotated, retained, crash-safe.

These are the ONLY files the gateway process ever writes (THREAT_MODEL.md): the
directory (0700), its segments (0600, O_APPEND, one write per batch of whole
lines) and tombstones.

- Start: the stream's last segment is read back. A last line cut short (the process
  was killed mid-write) is left as it is, never rewritten; the new segment's header
  records it (`recovered`) and links to the last whole record, so the trail goes on
  verifiable. Every start opens a new segment: no file is ever appended to by two
  processes, and a process that finds its stream's newest segment locked (flock)
  refuses to start rather than interleave.
- Rotation: before a write, when the segment has reached `rotate_bytes` or is
  `rotate_seconds` old. Old segments stay readable with the key they name.
- Retention: closed segments last written more than `retention_days` ago are
  replaced by a tombstone (written and flushed first), then deleted. Checked at
  start, at rotation, and at most once a minute on write.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable

import orjson

from gateway.audit import segment
from gateway.audit.crypto import Keyring, RecordError
from gateway.audit.event import iso_time
from gateway.audit.hashchain import GENESIS

log = logging.getLogger("gateway.audit")
SWEEP_SECONDS = 60.0
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


class SinkError(Exception):
    """The audit directory cannot be written as configured (start-up fails)."""


class SegmentSink:
    def __init__(
        self,
        directory: str,
        keys: Keyring,
        *,
        stream: str = "main",
        rotate_bytes: int = 64 << 20,
        rotate_seconds: float = 86400,
        retention_days: float | None = None,
        fsync: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if keys.current is None:
            raise SinkError("no audit key configured")
        self.dir, self.keys, self.stream = directory, keys, stream
        self.rotate_bytes, self.rotate_seconds = rotate_bytes, rotate_seconds
        self.retention_days, self._fsync, self._clock = retention_days, fsync, clock
        os.makedirs(directory, mode=0o700, exist_ok=True)  # ZDR-OK: the audit directory
        self._fd = -1
        self._last_plain: str | None = None
        index, prev, records, recovered = self._recover()
        self._open(index, prev, records, recovered)
        self._next_sweep = 0.0
        self.sweep()

    def _recover(self) -> tuple[int, str, int | None, dict[str, int] | None]:
        """(next index, prev link, records in the last segment, truncated record)."""
        mine = segment.listing(self.dir).get(self.stream, {})
        if not mine:
            return 0, GENESIS, None, None
        last = max(mine)
        files = mine[last]
        if "seg" not in files:  # only a tombstone: its last line is the link
            tomb = segment.unseal(_read(files["tomb"]), self.keys, "tombstone")
            return last + 1, str(tomb["last"]), int(tomb["records"]), None
        path = files["seg"]
        probe = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SinkError(
                f"audit stream {self.stream!r} in {self.dir} is being written by another "
                "process: give each process its own audit.stream"
            ) from None
        finally:
            os.close(probe)
        contents = segment.read(path)
        if not contents.header:  # killed while creating it: not even its header is whole
            log.error("audit: truncated record recovered", extra={"segment": last, "line": 1})
            self._last_plain = self._last_event(mine, last - 1)
            prev, records = self._link_before(mine, last)
            return last + 1, prev, records, {"index": last, "line": 1}
        header, cipher, aad = segment.opened(contents.header, self.keys)
        if contents.records:
            try:
                self._last_plain = cipher.open(contents.records[-1], aad)[1].decode()
            except (RecordError, UnicodeDecodeError):
                raise SinkError(
                    f"the last record of {path} does not open: edited or damaged; run "
                    "`zdr-gateway audit verify` and move the directory aside"
                ) from None
        else:  # restarted without traffic: the hash chain links to the last event before
            self._last_plain = self._last_event(mine, last - 1)
        recovered = None
        if contents.partial:
            recovered = {"index": last, "line": len(contents.records) + 2}
            log.error(
                "audit: truncated record recovered",
                extra={"segment": last, "line": recovered["line"]},
            )
        prev = contents.last_hash or str(header["prev"])
        return last + 1, prev, len(contents.records), recovered

    def _link_before(self, mine: dict[int, dict[str, str]], index: int) -> tuple[str, int | None]:
        """(prev, records) a header after `index - 1` carries."""
        files = mine.get(index - 1, {})
        if "seg" in files:
            contents = segment.read(files["seg"])
            prev = segment.unseal(contents.header, self.keys, "segment header")["prev"]
            return contents.last_hash or str(prev), len(contents.records)
        if "tomb" in files:
            tomb = segment.unseal(_read(files["tomb"]), self.keys, "tombstone")
            return str(tomb["last"]), int(tomb["records"])
        return GENESIS, None

    def _last_event(self, mine: dict[int, dict[str, str]], index: int) -> str | None:
        while index >= 0 and "seg" in mine.get(index, {}):
            contents = segment.read(mine[index]["seg"])
            if contents.records:
                _, cipher, aad = segment.opened(contents.header, self.keys)
                try:
                    return cipher.open(contents.records[-1], aad)[1].decode()
                except (RecordError, UnicodeDecodeError):
                    return None
            index -= 1
        return None

    def _open(
        self, index: int, prev: str, records: int | None, recovered: dict[str, int] | None
    ) -> None:
        key = self.keys.current
        assert key is not None
        salt = os.urandom(16)
        now = self._clock()
        fields = segment.header_fields(
            self.stream, index, salt, iso_time(now), prev, records, recovered
        )
        header = segment.seal(fields, key)
        path = os.path.join(self.dir, segment.name(self.stream, index))
        try:
            fd = os.open(path, _FLAGS, 0o600)  # ZDR-OK: the audit segment (ciphertext)
        except FileExistsError:
            raise SinkError(
                f"{path} appeared while opening it: another process writes audit stream "
                f"{self.stream!r}"
            ) from None
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _write_all(fd, header + b"\n")
        if self._fd >= 0:
            os.close(self._fd)  # the previous segment, closed once its successor exists
        self._fd, self.path, self.index = fd, path, index
        self._cipher = key.segment_cipher(salt)
        self._aad = bytes.fromhex(orjson.loads(header)["mac"])
        self._n, self._size, self._created = 0, len(header) + 1, now
        self._last_hash = prev

    def last_line(self) -> str | None:
        """The last audit event written before this start (plaintext JSON), or None."""
        return self._last_plain

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        now = self._clock()
        if self._n and (
            self._size >= self.rotate_bytes or now - self._created >= self.rotate_seconds
        ):
            self._open(self.index + 1, self._last_hash, self._n, None)
            self._next_sweep = 0.0
        cipher, aad, n = self._cipher, self._aad, self._n
        out = [cipher.seal(n + i, line.encode(), aad) for i, line in enumerate(lines)]
        out.append(b"")
        data = b"\n".join(out)
        _write_all(self._fd, data)
        if self._fsync:
            os.fsync(self._fd)
        self._n, self._size = n + len(lines), self._size + len(data)
        self._last_hash = hashlib.sha256(out[-2]).hexdigest()
        if time.monotonic() >= self._next_sweep:
            try:
                self.sweep()
            except OSError as exc:  # the events are written; retention tries again later
                log.error(
                    "audit: retention sweep failed", extra={"error_class": type(exc).__name__}
                )

    def sweep(self) -> int:
        """Replace expired closed segments by tombstones; returns how many."""
        self._next_sweep = time.monotonic() + SWEEP_SECONDS
        if self.retention_days is None:
            return 0
        from gateway.audit.retention import expire

        return expire(self, self._clock() - self.retention_days * 86400)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # a short write (full disk, a signal): finish it or fail loudly
        view = view[os.write(fd, view) :]
