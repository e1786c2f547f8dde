"""Auditor + sinks: stdout and file, chain continued across restarts, failures contained."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.audit.chain import verify
from gateway.audit.settings import AuditSettings
from gateway.audit.trail import Auditor
from gateway.context import RequestContext


def ctx(i: int) -> RequestContext:
    c = RequestContext(request_id=f"req_{i}")
    c.status = 200
    return c


def test_stdout_sink_writes_one_json_line_per_request() -> None:
    out = io.StringIO()
    a = Auditor.open(AuditSettings(), stdout=out)
    for i in range(3):
        a.emit(ctx(i), client_ip="10.0.0.1")
    lines = out.getvalue().splitlines()
    assert [json.loads(x)["request_id"] for x in lines] == ["req_0", "req_1", "req_2"]
    assert verify(lines).ok
    assert "client_ip_hash" not in lines[0]
    assert "10.0.0.1" not in out.getvalue()


def test_file_sink_appends_0600_and_links_restarts(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    settings = AuditSettings(sink="file", path=str(path))
    a = Auditor.open(settings)
    a.emit(ctx(0))
    a.emit(ctx(1))
    a.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    b = Auditor.open(settings)  # a restart
    b.emit(ctx(2))
    b.close()
    lines = path.read_text().splitlines()
    events = [json.loads(x) for x in lines]
    assert [e["seq"] for e in events] == [0, 1, 0]
    assert events[2]["prev"] == events[1]["hash"]  # the restart links to the file
    assert events[2]["chain"] != events[0]["chain"]
    r = verify(lines)
    assert r.ok
    assert r.chains == 2


def test_keyed_chain_and_hashed_ip() -> None:
    out = io.StringIO()
    s = AuditSettings(chain_key="c" * 32, client_ip="hashed", client_ip_key="i" * 32)
    a = Auditor.open(s, stdout=out)
    a.emit(ctx(0), client_ip="192.0.2.10")
    a.emit(ctx(1), client_ip=None)
    first, second = (json.loads(x) for x in out.getvalue().splitlines())
    assert len(first["client_ip_hash"]) == 32
    assert "client_ip_hash" not in second
    assert "192.0.2.10" not in out.getvalue()
    assert verify(out.getvalue().splitlines(), b"c" * 32).ok


def test_unchained_and_none_sinks() -> None:
    out = io.StringIO()
    Auditor.open(AuditSettings(chain=False), stdout=out).emit(ctx(0))
    assert "hash" not in json.loads(out.getvalue())
    none = Auditor.open(AuditSettings(sink="none"))
    none.emit(ctx(0))
    none.close()


def test_write_failure_is_counted_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    a = Auditor.open(AuditSettings(sink="file", path=str(path)))
    os.close(a.sink._fd)  # type: ignore[attr-defined]
    a.sink._fd = os.open(os.devnull, os.O_RDONLY)  # type: ignore[attr-defined]
    a.emit(ctx(0))
    assert a.failures == 1
    a.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sink": "file"}, "needs `path`"),
        ({"path": "/x"}, "only used with `sink: file`"),
        ({"client_ip": "hashed"}, "client_ip_key"),
        ({"client_ip": "hashed", "client_ip_key": "short"}, "at least 16"),
        ({"chain": False, "chain_key": "k" * 20}, "chain is false"),
        ({"sink": "syslog"}, "stdout"),
    ],
)
def test_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AuditSettings(**kwargs)  # type: ignore[arg-type]


def test_bare_yaml_off_means_off() -> None:
    assert AuditSettings(client_ip=False).client_ip == "off"  # type: ignore[arg-type]


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


async def test_requests_ending_in_one_loop_turn_share_one_write() -> None:
    out = CountingStream()
    a = Auditor.open(AuditSettings(), stdout=out)
    for i in range(5):
        a.emit(ctx(i))
    assert out.writes == 0  # sealed, not yet written: the end of this turn writes them
    await asyncio.sleep(0)
    assert out.writes == 1
    a.emit(ctx(5))
    await asyncio.sleep(0)
    assert out.writes == 2
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == [f"req_{i}" for i in range(6)]
    assert verify(lines).ok


async def test_close_writes_what_is_pending(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    a = Auditor.open(AuditSettings(sink="file", path=str(path)))
    a.emit(ctx(0))
    a.emit(ctx(1))
    a.close()  # before the loop turn ends: shutdown must not lose them
    assert len(path.read_text().splitlines()) == 2
    await asyncio.sleep(0)  # the scheduled write finds nothing left and does nothing
    assert verify(path.read_text().splitlines()).ok


async def test_a_failed_batched_write_counts_every_event(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    a = Auditor.open(AuditSettings(sink="file", path=str(path)))
    os.close(a.sink._fd)  # type: ignore[attr-defined]
    a.sink._fd = os.open(os.devnull, os.O_RDONLY)  # type: ignore[attr-defined]
    for i in range(3):
        a.emit(ctx(i))
    await asyncio.sleep(0)
    assert a.failures == 3
    a.emit(ctx(3))  # the next turn tries again
    await asyncio.sleep(0)
    assert a.failures == 4
    a.close()
