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

from gateway.audit.hashchain import verify
from gateway.audit.settings import AuditSettings
from gateway.audit.trail import Auditor
from gateway.config import ConfigError
from gateway.context import RequestContext
from tests.support import audit as support


def file_settings(directory: Path, **extra: object) -> AuditSettings:
    return AuditSettings.model_validate(support.file_sink(directory, **extra))


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


def test_file_sink_writes_0600_segments_and_links_restarts(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    settings = file_settings(directory)
    a = Auditor.open(settings)
    a.emit(ctx(0))
    a.emit(ctx(1))
    a.close()
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    b = Auditor.open(settings)  # a restart: a new segment, the chain linked to the last event
    b.emit(ctx(2))
    b.close()
    files = sorted(p.name for p in directory.iterdir())
    assert files == ["main.00000000.seg", "main.00000001.seg"]
    assert {stat.S_IMODE(os.stat(directory / f).st_mode) for f in files} == {0o600}
    result, events = support.read(directory)
    assert result.ok, [str(f) for f in result.findings]
    assert [e["seq"] for e in events] == [0, 1, 0]
    assert events[2]["prev"] == events[1]["hash"]  # the restart links to the last event
    assert events[2]["chain"] != events[0]["chain"]


def test_a_file_sink_that_cannot_start_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"audit\.dir"):
        Auditor.open(file_settings(blocker / "audit"))
    missing = AuditSettings.model_validate(
        {"sink": "file", "dir": str(tmp_path / "a"), "keys": [{"kid": "k", "key_file": "/nope"}]}
    )
    with pytest.raises(ConfigError, match=r"audit\.keys\[0\]\.key_file: cannot read"):
        Auditor.open(missing)


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


def test_hashed_session_id() -> None:
    out = io.StringIO()
    s = AuditSettings(session_id="hashed", session_id_key="s" * 32)
    a = Auditor.open(s, stdout=out)
    session = "76f63b3b-f6cf-41b4-80d1-162306bbc11c"
    a.emit(ctx(0), session_id=session)
    a.emit(ctx(1), session_id=session)
    a.emit(ctx(2))
    first, second, third = (json.loads(x) for x in out.getvalue().splitlines())
    assert len(first["session_id_hash"]) == 32
    assert first["session_id_hash"] == second["session_id_hash"]  # one session, one value
    assert "session_id_hash" not in third
    assert session not in out.getvalue()
    # Off by default: nothing of the header in the event.
    off = io.StringIO()
    Auditor.open(AuditSettings(), stdout=off).emit(ctx(0), session_id=session)
    assert "session_id" not in off.getvalue()


def test_unchained_and_none_sinks() -> None:
    out = io.StringIO()
    Auditor.open(AuditSettings(chain=False), stdout=out).emit(ctx(0))
    assert "hash" not in json.loads(out.getvalue())
    none = Auditor.open(AuditSettings(sink="none"))
    none.emit(ctx(0))
    none.close()


def test_write_failure_is_counted_not_raised(tmp_path: Path) -> None:
    a = Auditor.open(file_settings(tmp_path / "audit"))
    os.close(a.sink._fd)  # type: ignore[attr-defined]
    a.sink._fd = os.open(os.devnull, os.O_RDONLY)  # type: ignore[attr-defined]
    a.emit(ctx(0))
    assert a.failures == 1
    a.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sink": "file"}, "needs `dir`"),
        ({"sink": "file", "dir": "/x"}, "needs `keys`"),
        ({"dir": "/x"}, "only used with `sink: file`"),
        ({"path": "/x"}, "replaced by `dir`"),
        ({"retention_days": 0}, "greater than 0"),
        ({"keys": [{"kid": "a", "key": "short"}]}, "not a 32-byte key"),
        ({"keys": [{"kid": "a"}]}, "exactly one of"),
        ({"keys": [{"kid": "bad kid", "key_file": "/k"}]}, "pattern"),
        ({"stream": "Main"}, "pattern"),
        ({"client_ip": "hashed"}, "client_ip_key"),
        ({"client_ip": "hashed", "client_ip_key": "short"}, "at least 16"),
        ({"chain": False, "chain_key": "k" * 20}, "chain is false"),
        ({"session_id": "hashed"}, "session_id_key"),
        ({"session_id": "hashed", "session_id_key": "short"}, "at least 16"),
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
    a = Auditor.open(file_settings(tmp_path / "audit"))
    a.emit(ctx(0))
    a.emit(ctx(1))
    a.close()  # before the loop turn ends: shutdown must not lose them
    await asyncio.sleep(0)  # the scheduled write finds nothing left and does nothing
    result, events = support.read(tmp_path / "audit")
    assert result.ok
    assert len(events) == 2


async def test_a_failed_batched_write_counts_every_event(tmp_path: Path) -> None:
    a = Auditor.open(file_settings(tmp_path / "audit"))
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


def test_restart_without_the_newest_segments_key_fails_at_start(tmp_path: Path) -> None:
    Auditor.open(file_settings(tmp_path / "audit")).close()
    other = {"sink": "file", "dir": str(tmp_path / "audit")}
    rotated = AuditSettings.model_validate(
        other | {"keys": [{"kid": support.OLD_KID, "key": support.OLD_KEY}]}
    )
    with pytest.raises(ConfigError, match=rf"key id {support.KID}.*list its key in audit\.keys"):
        Auditor.open(rotated)
