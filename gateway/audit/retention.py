"""`audit.retention_days`: whole expired segments deleted, each leaving a tombstone.

A segment expires when it is closed (a later segment of its stream exists) and was
last written before the cutoff. Its tombstone records what it held (index, key id,
creation time, record count) and the hashes that link it into the trail: `prev` (its
header's link to the segment before) and `last` (its last whole record line), so
`audit verify` still follows the chain through it and can tell an expired segment
from a removed one. The tombstone is sealed with the writer's current key, written
and flushed before the segment is deleted: a crash in between leaves both, never
neither.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from gateway.audit import segment
from gateway.audit.event import iso_time

if TYPE_CHECKING:
    from gateway.audit.writer import SegmentSink

log = logging.getLogger("gateway.audit")
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def expire(sink: SegmentSink, cutoff: float) -> int:
    key = sink.keys.current
    assert key is not None
    done = 0
    mine = segment.listing(sink.dir).get(sink.stream, {})
    for index in sorted(mine):
        files = mine[index]
        path = files.get("seg")
        if index >= sink.index or path is None:
            continue
        if "tomb" in files:  # a crash between tombstone and deletion: finish it
            os.unlink(path)  # ZDR-OK: retention deletes an expired audit segment
            continue
        try:
            if os.stat(path).st_mtime >= cutoff:
                continue
            contents = segment.read(path)
            header = segment.unseal(contents.header, sink.keys, "segment header")
        except (OSError, segment.FormatError) as exc:
            # SECURITY: a segment that does not check out is evidence: keep it.
            log.error(
                "audit: expired segment kept",
                extra={"segment": index, "error_class": type(exc).__name__},
            )
            continue
        fields = {
            "zdr_audit_tombstone": segment.FORMAT,
            "stream": sink.stream,
            "index": index,
            "segment_kid": header["kid"],
            "created": header["created"],
            "records": len(contents.records),
            "prev": header["prev"],
            "last": contents.last_hash or header["prev"],
            "deleted": iso_time(time.time()),
            "reason": "retention",
            "retention_days": sink.retention_days,
        }
        tomb = os.path.join(sink.dir, segment.name(sink.stream, index, "tomb"))
        fd = os.open(tomb, _FLAGS, 0o600)  # ZDR-OK: the tombstone of an expired segment
        try:
            data = segment.seal(fields, key) + b"\n"
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.unlink(path)  # ZDR-OK: retention deletes an expired audit segment
        log.info("audit: segment expired", extra={"segment": index, "count": fields["records"]})
        done += 1
    return done
