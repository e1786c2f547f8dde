"""`audit verify DIR` and `audit export DIR`: read an audit directory stream by stream.

For each stream, segments are taken in index order and every link is checked:
- the file's name and its header agree on the index (else: a reordered segment);
- each index is there, as a segment or a tombstone (else: a missing segment);
- each header's `prev` and `prev_records` match the segment before it (else: the one
  before was truncated or replaced, or this one was moved);
- every record opens under its segment's key (else: an edited record), and the audit
  events inside form intact hash chains (hashchain.Verifier);
- a last line cut short is a truncated tail, unless the next segment's header records
  it (a crash the next start recovered from: reported as a note, not a break).
A tombstone (retention) stands in for its segment: its `prev`/`last` carry the link.
Findings name the file and the line, never a record's contents.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.audit import segment
from gateway.audit.crypto import Keyring, RecordError
from gateway.audit.hashchain import GENESIS, Verifier


@dataclass(frozen=True, slots=True)
class Finding:
    file: str
    line: int | None
    message: str
    broken: bool = True  # False: a note (expired segment, recovered crash)
    key: bool = False  # the key was missing or wrong (nothing could be checked)

    def __str__(self) -> str:
        where = f"{self.file}: line {self.line}" if self.line else self.file
        return f"{where}: {self.message}" if self.broken else f"note: {where}: {self.message}"


@dataclass
class Result:
    events: int = 0
    segments: int = 0
    tombstones: int = 0
    streams: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.broken for f in self.findings)

    @property
    def key_problem(self) -> bool:
        return any(f.key for f in self.findings)


Emit = Callable[[bytes], None]


def verify_dir(
    directory: str, keys: Keyring, chain_key: bytes | None = None, emit: Emit | None = None
) -> Result:
    """Check every stream in `directory`; `emit` receives each record's plaintext (export)."""
    result = Result()
    streams = segment.listing(directory)
    if not streams:
        result.findings.append(Finding(directory, None, "no audit segments here"))
    for stream in sorted(streams):
        result.streams += 1
        _Stream(stream, streams[stream], keys, chain_key, result, emit).run()
    return result


class _Stream:
    def __init__(
        self, name: str, files: dict[int, dict[str, str]], keys: Keyring,
        chain_key: bytes | None, result: Result, emit: Emit | None,
    ) -> None:  # fmt: skip
        self.name, self.files, self.keys, self.result, self.emit = name, files, keys, result, emit
        self.chain = Verifier(chain_key)
        # What the next header must say (None: unknown after a break).
        self.prev: str | None = GENESIS
        self.prev_records: int | None = None
        self.cut: tuple[str, int, int] | None = None  # (file, line, index) of a cut last line

    def note(
        self, file: str, line: int | None, message: str, broken: bool = True, key: bool = False
    ) -> None:
        self.result.findings.append(Finding(os.path.basename(file), line, message, broken, key))

    def run(self) -> None:
        expected = 0
        for index in sorted(self.files):
            kinds = self.files[index]
            if index > expected:
                first = os.path.basename(next(iter(kinds.values())))
                gone = f"{expected}" if index == expected + 1 else f"{expected}-{index - 1}"
                self.note(first, None, f"missing segment(s) {gone} of stream {self.name} "
                          "before this one: deleted without a tombstone")  # fmt: skip
                self.chain.skip()
                self.prev, self.prev_records = None, None
            expected = index + 1
            if "seg" in kinds:
                self.segment(index, kinds["seg"])
            else:
                self.tombstone(index, kinds["tomb"])
        if self.cut is not None:
            file, line, _ = self.cut
            self.note(file, line, "truncated tail: the last record is cut short and no later "
                      "start recorded it (a crash, or the file was cut)")  # fmt: skip

    def _check_link(self, file: str, fields: dict[str, Any], what: str) -> None:
        if self.prev is not None and fields.get("prev") != self.prev:
            self.note(file, 1 if what == "header" else None,
                      f"does not follow the segment before it ({what} prev does not match its "
                      "last record): segments reordered or replaced, or that one's tail "
                      "was truncated")  # fmt: skip
        elif self.prev_records is not None and fields.get("prev_records") not in (
            None, self.prev_records,
        ):  # fmt: skip
            self.note(file, 1, f"the segment before it held {fields.get('prev_records')} "
                      f"record(s), {self.prev_records} are there: truncated tail")  # fmt: skip

    def _take_cut(self, file: str, header: dict[str, Any]) -> None:
        if self.cut is None:
            return
        cut_file, cut_line, cut_index = self.cut
        self.cut = None
        rec = header.get("recovered")
        if isinstance(rec, dict) and rec == {"index": cut_index, "line": cut_line}:
            self.note(cut_file, cut_line, "truncated record (a crash while writing), recorded "
                      f"by the next start in {os.path.basename(file)}", broken=False)  # fmt: skip
        else:
            self.note(cut_file, cut_line, "truncated record that no later start recorded")

    def tombstone(self, index: int, path: str) -> None:
        self.result.tombstones += 1
        try:
            with open(path, "rb") as f:
                fields = segment.unseal(f.read().strip(), self.keys, "tombstone")
        except (OSError, segment.FormatError) as exc:
            self.note(path, None, str(exc), key=isinstance(exc, segment.WrongKey))
            self.prev, self.prev_records = None, None
            self.chain.skip()
            return
        if fields.get("index") != index or fields.get("stream") != self.name:
            self.note(path, None, f"tombstone is for segment {fields.get('index')}: renamed")
        self._check_link(path, fields, "tombstone")
        self.note(path, None, f"segment {index} expired by retention ({fields['records']} "
                  f"record(s), deleted {fields['deleted']})", broken=False)  # fmt: skip
        self.prev, self.prev_records = str(fields["last"]), int(fields["records"])
        self.chain.skip()

    def segment(self, index: int, path: str) -> None:
        self.result.segments += 1
        try:
            contents = segment.read(path)
            if not contents.header:  # the writer was killed before its header was whole
                self.cut = (path, 1, index)
                return
            header, cipher, aad = segment.opened(contents.header, self.keys)
        except (OSError, segment.FormatError) as exc:
            self.note(path, 1, str(exc), key=isinstance(exc, segment.WrongKey))
            self.prev, self.prev_records = None, None
            self.chain.skip()
            return
        self._take_cut(path, header)
        if header.get("index") != index or header.get("stream") != self.name:
            self.note(path, 1, f"this file holds segment {header.get('index')} of stream "
                      f"{header.get('stream')}: segments reordered or renamed")  # fmt: skip
        self._check_link(path, header, "header")
        for line, raw in enumerate(contents.records, start=2):
            try:
                _, plain = cipher.open(raw, aad)
            except RecordError:
                self.note(path, line, "record edited or damaged: it does not authenticate")
                self.chain.skip()
                continue
            problem = self.chain.feed_sealed(plain)
            if problem is not None:
                self.note(path, line, problem)
            self.result.events += 1
            if self.emit is not None:
                self.emit(plain)
        if contents.partial:
            self.cut = (path, len(contents.records) + 2, index)
        self.prev = contents.last_hash or str(header["prev"])
        self.prev_records = len(contents.records)
