"""The hash chains and `verify`: every kind of tampering is reported at the right line."""

from __future__ import annotations

import json

import pytest

from gateway.audit.hashchain import GENESIS, HashChain, verify


def trail(n: int, key: bytes | None = None, chain: HashChain | None = None) -> list[str]:
    chain = chain or HashChain(key)
    return [
        json.dumps(chain.seal({"audit": 1, "request_id": f"req_{i}", "status": 200}))
        for i in range(n)
    ]


def test_intact_chain() -> None:
    lines = trail(5)
    r = verify(lines)
    assert r.ok
    assert (r.events, r.chains) == (5, 1)
    first = json.loads(lines[0])
    assert (first["seq"], first["prev"]) == (0, GENESIS)
    assert json.loads(lines[1])["prev"] == first["hash"]


@pytest.mark.parametrize("key", [None, b"k" * 32])
def test_seal_line_is_seal_serialised_once(key: bytes | None) -> None:
    by_dict, by_line = HashChain(key), HashChain(key)
    by_line.id = by_dict.id
    events = [{"audit": 1, "request_id": f"req_{i}", "team": "é", "status": 200} for i in range(4)]
    lines = [by_line.seal_line(e) for e in events]
    assert [json.loads(line) for line in lines] == [by_dict.seal(e) for e in events]
    assert verify(lines, key).ok
    assert all(line.endswith('"}') and '"hash":' in line for line in lines)
    # One changed byte in the sealed text is caught.
    lines[1] = lines[1].replace('"status":200', '"status":201')
    report = verify(lines, key)
    assert (report.ok, report.line) == (False, 2)


def test_canonical_form_is_the_json_modules_for_gateway_events() -> None:
    """orjson writes the canonical form; for every event the gateway builds it must be
    the text `json.dumps(sort_keys=True)` gives, so any JSON tool can re-derive a hash."""
    from gateway.audit.event import build
    from gateway.audit.hashchain import canonical
    from gateway.context import RequestContext, Usage

    ctx = RequestContext(request_id="gw_0123456789abcdef01234567", started=0.0)
    ctx.status, ctx.stream, ctx.bytes_in, ctx.bytes_out = 200, True, 1234, 98765
    ctx.ttfb, ctx.decisions = 0.0004567, ["rewrite:openai.store"]
    ctx.usage = Usage(input_tokens=10, output_tokens=2**40, cache_read_input_tokens=3)
    for ended in (0.000001, 1.5, 599.9999, 86400.0):
        event = HashChain().seal(build(ctx, now=1_790_000_000.123, ended=ended))
        stdlib = json.dumps(
            {k: v for k, v in event.items() if k != "hash"}, sort_keys=True, separators=(",", ":")
        )
        assert canonical(event) == stdlib.encode()


def test_edited_line() -> None:
    lines = trail(5)
    lines[2] = lines[2].replace('"status": 200', '"status": 500')
    r = verify(lines)
    assert not r.ok
    assert r.line == 3
    assert "edited" in (r.problem or "")
    assert r.events == 2


def test_edited_and_rehashed_line_breaks_the_next_link() -> None:
    lines = trail(5)
    e = json.loads(lines[1])
    e["status"] = 201
    forged = HashChain()
    forged.id, forged.prev, forged.seq = e["chain"], e["prev"], e["seq"]
    lines[1] = json.dumps(forged.seal({k: e[k] for k in ("audit", "request_id", "status")}))
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


def test_deleted_first_line() -> None:
    r = verify(trail(4)[1:])
    assert not r.ok
    assert r.line == 1
    assert "starts at seq 1" in (r.problem or "")


def test_reordered_lines() -> None:
    lines = trail(5)
    lines[1], lines[2] = lines[2], lines[1]
    r = verify(lines)
    assert not r.ok
    assert r.line == 2
    assert "moved" in (r.problem or "")


def test_replayed_line_is_out_of_order() -> None:
    lines = trail(5)
    lines.append(lines[1])
    r = verify(lines)
    assert not r.ok
    assert r.line == 6
    assert "out of order" in (r.problem or "")


def test_truncated_line() -> None:
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


def test_interleaved_writers() -> None:
    """Several workers (or replicas on one log stream) each keep their own chain."""
    a, b = trail(4), trail(3)
    mixed = [a[0], b[0], a[1], a[2], b[1], b[2], a[3]]
    r = verify(mixed)
    assert r.ok
    assert (r.events, r.chains) == (7, 2)
    del mixed[4]  # b's seq 1
    r = verify(mixed)
    assert not r.ok
    assert r.line == 5
    assert "missing" in (r.problem or "")


def test_restart_links_to_the_file_and_detects_a_deleted_tail() -> None:
    first = trail(3)
    resumed = trail(2, chain=HashChain.resume(first[-1], None))
    assert json.loads(resumed[0])["prev"] == json.loads(first[-1])["hash"]
    r = verify(first + resumed)
    assert r.ok
    assert r.chains == 2
    # The last events before the restart were removed: the new chain points at nothing.
    r = verify(first[:-1] + resumed)
    assert not r.ok
    assert r.line == 3
    assert "links to an event that is not here" in (r.problem or "")


def test_resume_from_nothing_or_garbage_starts_at_genesis() -> None:
    assert HashChain.resume("not json", None).prev == GENESIS
    assert HashChain.resume(None, None).prev == GENESIS


def test_rotated_file_needs_partial() -> None:
    lines = trail(6)
    assert not verify(lines[3:]).ok
    r = verify(lines[3:], partial=True)
    assert r.ok
    assert len(r.partial) == 1
    assert r.partial[0][1] == 3
    # Mid-file starts are still breaks inside the chain.
    assert not verify(lines[3:4] + lines[5:], partial=True).ok


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


@pytest.mark.parametrize("missing", ["chain", "seq", "prev"])
def test_unchained_events(missing: str) -> None:
    e = json.loads(trail(1)[0])
    del e[missing]
    r = verify([json.dumps(e)])
    assert not r.ok
    assert "chain" in (r.problem or "")
