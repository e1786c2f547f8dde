"""The hash chain and `verify`: every kind of tampering is reported at the right line."""

from __future__ import annotations

import json

import pytest

from gateway.audit.chain import GENESIS, Chain, verify


def trail(n: int, key: bytes | None = None, start: Chain | None = None) -> list[str]:
    chain = start or Chain(key)
    return [
        json.dumps(chain.seal({"audit": 1, "request_id": f"req_{i}", "status": 200}))
        for i in range(n)
    ]


def test_intact_chain() -> None:
    lines = trail(5)
    r = verify(lines)
    assert r.ok
    assert (r.events, r.segments) == (5, 1)
    assert json.loads(lines[0])["prev"] == GENESIS
    assert r.last_hash == json.loads(lines[-1])["hash"]


def test_edited_line() -> None:
    lines = trail(5)
    lines[2] = (
        lines[2].replace('"status":200', '"status":500').replace('"status": 200', '"status": 500')
    )
    r = verify(lines)
    assert not r.ok
    assert r.line == 3
    assert r.problem is not None
    assert "edited" in r.problem
    assert r.events == 2


def test_edited_and_rehashed_line_breaks_the_next_link() -> None:
    lines = trail(5)
    e = json.loads(lines[1])
    e["status"] = 201
    forged = Chain(prev=e["prev"], seq=e["seq"]).seal(
        {k: e[k] for k in ("audit", "request_id", "status")}
    )
    lines[1] = json.dumps(forged)
    r = verify(lines)
    assert not r.ok
    assert r.line == 3
    assert "replaced" in (r.problem or "")


def test_deleted_line() -> None:
    lines = trail(6)
    del lines[3]
    r = verify(lines)
    assert not r.ok
    assert r.line == 4
    assert "1 event(s) missing" in (r.problem or "")


def test_reordered_lines() -> None:
    lines = trail(5)
    lines[1], lines[2] = lines[2], lines[1]
    r = verify(lines)
    assert not r.ok
    assert r.line == 2
    # seq 2 right after seq 0 reads as a gap; the swap is caught at the first moved line
    assert "moved" in (r.problem or "")
    lines = trail(5)
    lines[3], lines[4] = lines[4], lines[3]
    assert not verify(lines).ok


def test_moved_back_line_is_out_of_order() -> None:
    lines = trail(5)
    lines.append(lines[1])  # a replayed/duplicated old event
    r = verify(lines)
    assert not r.ok
    assert r.line == 6
    assert "out of order" in (r.problem or "")


def test_truncated_and_garbage_lines() -> None:
    lines = trail(3)
    lines[2] = lines[2][:20]
    r = verify(lines)
    assert not r.ok
    assert r.line == 3
    assert "truncated" in (r.problem or "")


def test_keyed_chain_needs_the_key() -> None:
    key = b"k" * 32
    lines = trail(4, key)
    assert verify(lines, key).ok
    r = verify(lines)
    assert not r.ok
    assert "--key-env" in (r.problem or "")
    assert not verify(lines, b"x" * 32).ok


def test_restart_starts_a_new_segment_and_resume_continues() -> None:
    first = trail(3)
    second = trail(2)  # a new process on stdout: seq 0 again
    assert verify(first + second).segments == 2
    resumed = trail(2, start=Chain.resume(first[-1], None))
    r = verify(first + resumed)
    assert r.ok
    assert r.segments == 1
    assert json.loads(resumed[0])["seq"] == 3


def test_resume_from_garbage_starts_fresh() -> None:
    assert Chain.resume("not json", None).seq == 0
    assert Chain.resume(None, None).prev == GENESIS


def test_rotated_file_starts_mid_chain() -> None:
    lines = trail(6)
    r = verify(lines[3:])
    assert r.ok
    assert r.first_seq == 3


def test_mixed_stdout_skips_log_lines_only_when_asked() -> None:
    lines = trail(3)
    log = json.dumps({"time": "t", "level": "INFO", "logger": "gateway", "message": "x"})
    mixed = [lines[0], log, lines[1], "", lines[2]]
    assert verify(mixed, mixed=True).ok
    assert not verify(mixed).ok
    # An event stripped of its marker to pass as a log line is a deletion.
    e = json.loads(lines[1])
    del e["audit"]
    assert not verify([lines[0], json.dumps(e), lines[2]], mixed=True).ok


@pytest.mark.parametrize("missing", ["seq", "prev"])
def test_unchained_events(missing: str) -> None:
    e = json.loads(trail(1)[0])
    del e[missing]
    r = verify([json.dumps(e)])
    assert not r.ok
    assert "chain" in (r.problem or "")
