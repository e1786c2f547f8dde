"""Encrypted segments: round trip, keys, rotation, retention, and every break `verify` names."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gateway.audit.crypto import AuditKey, Keyring, parse_key
from gateway.audit.hashchain import HashChain
from gateway.audit.writer import SegmentSink, SinkError
from tests.support import audit as support

CANARY_KID = "canary-kid-7f3a91"


class Clock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def open_sink(directory: Path, keys: Keyring | None = None, **kw: object) -> SegmentSink:
    return SegmentSink(str(directory), keys or support.keyring(), **kw)  # type: ignore[arg-type]


def put(sink: SegmentSink, n: int, start: int = 0, **fields: object) -> None:
    chain = HashChain.resume(sink.last_line(), None)
    for i in range(start, start + n):
        sink.write([chain.seal_line({"audit": 1, "request_id": f"req_{i}", **fields})])


def trail(directory: Path, segments: int, per: int = 3) -> None:
    """`segments` segments of `per` events each (a restart between each)."""
    for s in range(segments):
        sink = open_sink(directory)
        put(sink, per, start=s * per)
        sink.close()


def seg(directory: Path, index: int, stream: str = "main") -> Path:
    return directory / f"{stream}.{index:08d}.seg"


def findings(directory: Path, keys: Keyring | None = None) -> list[str]:
    result, _ = support.read(directory, keys)
    return [str(f) for f in result.findings]


def test_round_trip_across_segments_and_restarts(tmp_path: Path) -> None:
    trail(tmp_path, 3)
    result, events = support.read(tmp_path)
    assert result.ok, findings(tmp_path)
    assert (result.events, result.segments, result.streams) == (9, 3, 1)
    assert [e["request_id"] for e in events] == [f"req_{i}" for i in range(9)]
    # Each restart's chain starts at seq 0 and links to the last event before it.
    assert [e["seq"] for e in events] == [0, 1, 2] * 3
    assert events[3]["prev"] == events[2]["hash"]


def test_no_plaintext_in_a_segment_file(tmp_path: Path) -> None:
    sink = open_sink(tmp_path)
    put(sink, 5, key_id=CANARY_KID, team="canary-team-19c2", status=200)
    sink.close()
    raw = seg(tmp_path, 0).read_bytes()
    for secret in (CANARY_KID, "canary-team", "req_", "request_id", '"status"', "200"):
        assert secret.encode() not in raw, secret
    _, events = support.read(tmp_path)
    assert {e["key_id"] for e in events} == {CANARY_KID}  # and it is all there, decrypted


def test_wrong_key_is_a_clear_error_never_garbage(tmp_path: Path) -> None:
    trail(tmp_path, 1)
    other = Keyring([AuditKey.of(support.KID, parse_key(support.OLD_KEY))])
    result, events = support.read(tmp_path, other)
    assert not result.ok
    assert result.key_problem
    assert events == []
    assert findings(tmp_path, other) == [
        f"main.00000000.seg: line 1: wrong key for key id {support.KID}: the key given is "
        "not the one it was written with"
    ]
    unknown = support.keyring(("someone-else", support.KEY))
    (message,) = findings(tmp_path, unknown)
    assert f"key id {support.KID}, which was not given" in message
    assert f"--key-env {support.KID}=VAR" in message


def test_key_rotation_old_segments_stay_readable(tmp_path: Path) -> None:
    old = support.keyring((support.OLD_KID, support.OLD_KEY))
    sink = open_sink(tmp_path, old)
    put(sink, 2)
    sink.close()
    both = support.keyring((support.KID, support.KEY), (support.OLD_KID, support.OLD_KEY))
    sink = open_sink(tmp_path, both)  # the new key first: new segments use it
    put(sink, 2, start=2)
    sink.close()
    headers = [seg(tmp_path, i).read_text().splitlines()[0] for i in (0, 1)]
    assert f'"kid":"{support.OLD_KID}"' in headers[0]
    assert f'"kid":"{support.KID}"' in headers[1]
    result, events = support.read(tmp_path, both)
    assert result.ok
    assert len(events) == 4
    # Without the old key the old segment is named, the new one still reads.
    result, events = support.read(tmp_path, support.keyring())
    assert result.key_problem
    assert [e["request_id"] for e in events] == ["req_2", "req_3"]


def test_tampered_ciphertext(tmp_path: Path) -> None:
    trail(tmp_path, 2)
    lines = seg(tmp_path, 1).read_text().splitlines()
    n, body = lines[2].split(" ")
    lines[2] = f"{n} {body[:10]}{'A' if body[10] != 'A' else 'B'}{body[11:]}"
    seg(tmp_path, 1).write_text("\n".join(lines) + "\n")
    assert findings(tmp_path) == [
        "main.00000001.seg: line 3: record edited or damaged: it does not authenticate"
    ]


def test_edited_header(tmp_path: Path) -> None:
    trail(tmp_path, 2)
    text = seg(tmp_path, 1).read_text()
    seg(tmp_path, 1).write_text(text.replace('"prev_records":3', '"prev_records":4', 1))
    assert "main.00000001.seg: line 1: segment header was edited" in findings(tmp_path)[0]


def test_record_moved_within_a_segment(tmp_path: Path) -> None:
    trail(tmp_path, 1, per=4)
    lines = seg(tmp_path, 0).read_text().splitlines()
    lines[2], lines[3] = lines[3], lines[2]
    seg(tmp_path, 0).write_text("\n".join(lines) + "\n")
    first, second = findings(tmp_path)
    assert first.startswith("main.00000000.seg: line 3: 1 event(s) missing before this line, ")
    assert "moved" in first
    assert second.startswith("main.00000000.seg: line 4: events out of order, moved")


def test_missing_middle_segment(tmp_path: Path) -> None:
    trail(tmp_path, 4)
    seg(tmp_path, 2).unlink()
    assert findings(tmp_path) == [
        "main.00000003.seg: missing segment(s) 2 of stream main before this one: deleted "
        "without a tombstone"
    ]


def test_reordered_segments(tmp_path: Path) -> None:
    trail(tmp_path, 4)
    tmp = tmp_path / "swap"
    seg(tmp_path, 1).rename(tmp)
    seg(tmp_path, 2).rename(seg(tmp_path, 1))
    tmp.rename(seg(tmp_path, 2))
    found = findings(tmp_path)
    assert found[0] == (
        "main.00000001.seg: line 1: this file holds segment 2 of stream main: segments "
        "reordered or renamed"
    )
    assert any(f.startswith("main.00000002.seg: line 1: this file holds segment 1") for f in found)


@pytest.mark.parametrize("where", ["mid-record", "whole-record"])
def test_truncated_tail_of_a_middle_segment(tmp_path: Path, where: str) -> None:
    trail(tmp_path, 3)
    data = seg(tmp_path, 1).read_bytes()
    lines = data.split(b"\n")
    cut = b"\n".join(lines[:-2]) + b"\n"  # the last record removed whole
    if where == "mid-record":
        cut += lines[-2][:30]
    seg(tmp_path, 1).write_bytes(cut)
    found = findings(tmp_path)
    assert any(f.startswith("main.00000002.seg: line 1: does not follow") for f in found), found
    if where == "mid-record":
        assert "main.00000001.seg: line 4: truncated record that no later start recorded" in found


def test_truncated_tail_of_the_last_segment(tmp_path: Path) -> None:
    trail(tmp_path, 2)
    data = seg(tmp_path, 1).read_bytes()
    seg(tmp_path, 1).write_bytes(data[:-40])
    assert findings(tmp_path) == [
        "main.00000001.seg: line 4: truncated tail: the last record is cut short and no later "
        "start recorded it (a crash, or the file was cut)"
    ]


def test_crash_mid_record_is_recorded_and_the_chain_goes_on(tmp_path: Path) -> None:
    trail(tmp_path, 1, per=4)
    data = seg(tmp_path, 0).read_bytes()
    seg(tmp_path, 0).write_bytes(data[:-25])  # kill -9 during the last write
    sink = open_sink(tmp_path)  # the next start
    header = seg(tmp_path, 1).read_text().splitlines()[0]
    assert '"recovered":{"index":0,"line":5}' in header
    put(sink, 2, start=10)
    sink.close()
    result, events = support.read(tmp_path)
    assert result.ok, findings(tmp_path)
    assert [str(f) for f in result.findings] == [
        "note: main.00000000.seg: line 5: truncated record (a crash while writing), recorded "
        "by the next start in main.00000001.seg"
    ]
    ids = [e["request_id"] for e in events]
    assert ids == ["req_0", "req_1", "req_2", "req_10", "req_11"]
    assert events[3]["prev"] == events[2]["hash"]  # continues from the last whole record


def test_rotation_by_size(tmp_path: Path) -> None:
    sink = open_sink(tmp_path, rotate_bytes=4096)
    put(sink, 40, padding="x" * 200)
    sink.close()
    sizes = [p.stat().st_size for p in sorted(tmp_path.glob("main.*.seg"))]
    assert len(sizes) >= 3
    assert all(s < 4096 + 1024 for s in sizes)  # at most one batch past the limit
    result, events = support.read(tmp_path)
    assert result.ok
    assert len(events) == 40


def test_rotation_by_time(tmp_path: Path) -> None:
    clock = Clock()
    sink = open_sink(tmp_path, rotate_seconds=3600, clock=clock)
    chain = HashChain()
    for hour in range(3):
        for i in range(2):
            sink.write([chain.seal_line({"audit": 1, "request_id": f"r{hour}.{i}"})])
        clock.now += 3600
    sink.close()
    assert len(list(tmp_path.glob("main.*.seg"))) == 3
    result, events = support.read(tmp_path)
    assert result.ok
    assert [e["seq"] for e in events] == list(range(6))  # one chain across the segments


def test_retention_leaves_tombstones_and_verify_follows_them(tmp_path: Path) -> None:
    trail(tmp_path, 4)
    old = 1_700_000_000
    for i in (0, 1):
        os.utime(seg(tmp_path, i), (old, old))
    clock = Clock(old + 31 * 86400)
    sink = open_sink(tmp_path, retention_days=30, clock=clock)  # start sweeps
    put(sink, 1, start=100)
    sink.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[:2] == ["main.00000000.tomb", "main.00000001.tomb"]
    assert "main.00000000.seg" not in names
    assert "main.00000002.seg" in names  # not expired
    result, events = support.read(tmp_path)
    assert result.ok, findings(tmp_path)
    assert result.tombstones == 2
    notes = [str(f) for f in result.findings]
    assert notes[0].startswith("note: main.00000000.tomb: segment 0 expired by retention (3 rec")
    assert [e["request_id"] for e in events][:1] == ["req_6"]
    # A removed segment is told apart from an expired one...
    seg(tmp_path, 2).unlink()
    assert "missing segment(s) 2" in findings(tmp_path)[-1]


def test_a_forged_or_removed_tombstone_is_a_break(tmp_path: Path) -> None:
    trail(tmp_path, 3)
    os.utime(seg(tmp_path, 0), (1, 1))
    open_sink(tmp_path, retention_days=1).close()
    tomb = tmp_path / "main.00000000.tomb"
    backup = tomb.read_text()
    tomb.write_text(backup.replace('"records":3', '"records":2'))
    assert (
        findings(tmp_path)[0]
        == "main.00000000.tomb: tombstone was edited: its mac does not match its content"
    )
    tomb.unlink()
    assert findings(tmp_path)[0].startswith("main.00000001.seg: missing segment(s) 0")
    shutil.rmtree(tmp_path)


def test_one_writer_per_stream(tmp_path: Path) -> None:
    first = open_sink(tmp_path)
    with pytest.raises(SinkError, match="being written by another process"):
        open_sink(tmp_path)
    other = open_sink(tmp_path, stream="main-w1")  # another stream: fine
    put(first, 2)
    put(other, 2)
    first.close()
    other.close()
    result, _ = support.read(tmp_path)
    assert result.ok
    assert (result.streams, result.events) == (2, 4)


def test_crash_while_creating_a_segment(tmp_path: Path) -> None:
    trail(tmp_path, 1)
    torn = seg(tmp_path, 1)
    torn.write_bytes(b'{"zdr_audit_segment":1,"str')  # killed inside the header's write
    sink = open_sink(tmp_path)
    put(sink, 1, start=50)
    sink.close()
    result, events = support.read(tmp_path)
    assert result.ok, findings(tmp_path)
    assert findings(tmp_path) == [
        "note: main.00000001.seg: line 1: truncated record (a crash while writing), recorded "
        "by the next start in main.00000002.seg"
    ]
    assert events[3]["prev"] == events[2]["hash"]
    torn.unlink()  # ...and without the next header's word for it, a gap is a break
    assert "missing segment(s) 1" in findings(tmp_path)[0]


def test_an_event_edited_by_a_key_holder_breaks_the_hash_chain(tmp_path: Path) -> None:
    """Encryption binds a record to its segment; the chain binds the event to its text."""
    sink = open_sink(tmp_path)
    chain = HashChain(b"c" * 32)
    lines = [chain.seal_line({"audit": 1, "request_id": f"r{i}", "status": 200}) for i in range(3)]
    lines[1] = lines[1].replace('"status":200', '"status":201')  # re-encrypted by the sink
    sink.write(lines)
    sink.close()
    result, _ = support.read(tmp_path, chain_key=b"c" * 32)
    assert [str(f) for f in result.findings] == [
        "main.00000000.seg: line 3: event was edited: its hash does not match its content"
    ]
    assert support.read(tmp_path, chain_key=b"d" * 32)[0].findings[0].line == 2  # wrong key


def test_a_failed_retention_sweep_does_not_fail_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.audit import retention

    sink = open_sink(tmp_path, retention_days=1)

    def broken(*args: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(retention, "expire", broken)
    sink._next_sweep = 0.0
    put(sink, 2)  # written, and the sweep's failure only logged
    sink.close()
    assert len(support.read(tmp_path)[1]) == 2
