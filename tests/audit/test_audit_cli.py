"""`audit verify|export|new-key` as commands: exit status, and reports that name the file and
line."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.audit import cli
from gateway.audit.crypto import parse_key
from gateway.audit.hashchain import HashChain
from gateway.audit.writer import SegmentSink
from tests.support import audit as support


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="zdr-gateway")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def write(
    path: Path, n: int, key: bytes | None = None, chain: HashChain | None = None
) -> list[str]:
    chain = chain or HashChain(key)
    lines = [json.dumps(chain.seal({"audit": 1, "request_id": f"r{i}"})) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return lines


def test_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "a.jsonl"
    write(f, 4)
    assert run(["audit", "verify", str(f)]) == 0
    assert "OK: 4 event(s) in 1 chain(s)" in capsys.readouterr().out


Tamper = Callable[[list[str]], object]


@pytest.mark.parametrize(
    ("tamper", "line", "words"),
    [
        (lambda ls: ls.__setitem__(1, ls[1].replace("r1", "rX")), 2, "edited"),
        (lambda ls: ls.pop(2), 3, "missing"),
        (lambda ls: ls.insert(4, ls.pop(1)), 2, "moved"),
    ],
    ids=["edited", "deleted", "reordered"],
)
def test_breaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tamper: Tamper, line: int, words: str
) -> None:
    f = tmp_path / "a.jsonl"
    lines = write(f, 6)
    tamper(lines)
    f.write_text("\n".join(lines) + "\n")
    assert run(["audit", "verify", str(f)]) == 1
    out = capsys.readouterr().out
    assert f"{f}: line {line}: " in out
    assert words in out


def test_rotated_files_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chain = HashChain()
    old, new = tmp_path / "audit.1.jsonl", tmp_path / "audit.jsonl"
    write(old, 3, chain=chain)
    write(new, 2, chain=chain)
    assert run(["audit", "verify", str(old), str(new)]) == 0
    assert "OK: 5 event(s)" in capsys.readouterr().out
    assert run(["audit", "verify", str(new)]) == 1
    assert f"{new}: line 1: " in capsys.readouterr().out
    assert run(["audit", "verify", "--partial", str(new)]) == 0
    assert "starts in an earlier file" in capsys.readouterr().out
    # A break in the second file is reported by its own line number.
    lines = new.read_text().splitlines()
    new.write_text(lines[1] + "\n")
    assert run(["audit", "verify", str(old), str(new)]) == 1
    assert f"{new}: line 1: 1 event(s) missing" in capsys.readouterr().out


def test_keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "a.jsonl"
    write(f, 3, b"s" * 20)
    monkeypatch.setenv("AUDIT_KEY", "s" * 20)
    assert run(["audit", "verify", "--key-env", "AUDIT_KEY", str(f)]) == 0
    assert run(["audit", "verify", str(f)]) == 1
    monkeypatch.delenv("AUDIT_KEY")
    assert run(["audit", "verify", "--key-env", "AUDIT_KEY", str(f)]) == 2


def test_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["audit", "verify", str(tmp_path / "missing")]) == 2
    assert "cannot read" in capsys.readouterr().err


def segments(directory: Path, n: int = 3) -> None:
    sink = SegmentSink(str(directory), support.keyring())
    chain = HashChain()
    sink.write([chain.seal_line({"audit": 1, "request_id": f"r{i}"}) for i in range(n)])
    sink.close()


def test_verify_and_export_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    segments(tmp_path)
    monkeypatch.setenv("AK", support.KEY)
    key = f"{support.KID}=AK"
    assert run(["audit", "verify", str(tmp_path), "--key-env", key]) == 0
    assert "OK: 3 event(s) in 1 segment(s) of 1 stream(s)" in capsys.readouterr().out
    assert run(["audit", "export", str(tmp_path), "--key-env", key]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["request_id"] for line in out.splitlines()] == ["r0", "r1", "r2"]
    assert "OK: 3 event(s)" in err  # the report goes to stderr: stdout is the JSON lines
    keyfile = tmp_path.parent / "k.key"
    keyfile.write_text(support.KEY + "\n")
    assert run(["audit", "export", str(tmp_path), "--key-file", f"{support.KID}={keyfile}"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_export_with_a_wrong_or_missing_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    segments(tmp_path)
    monkeypatch.setenv("AK", support.OLD_KEY)
    assert run(["audit", "export", str(tmp_path), "--key-env", f"{support.KID}=AK"]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # never garbage
    assert f"wrong key for key id {support.KID}" in err
    assert run(["audit", "export", str(tmp_path)]) == 2
    assert "which was not given" in capsys.readouterr().err
    monkeypatch.setenv("AK", "not-a-key")
    assert run(["audit", "verify", str(tmp_path), "--key-env", f"{support.KID}=AK"]) == 2
    err = capsys.readouterr().err
    assert "not a 32-byte key" in err
    assert "not-a-key" not in err


def test_verify_with_the_gateways_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "audit"
    segments(directory)
    config = tmp_path / "gateway.yaml"
    monkeypatch.setenv("AUDIT_KEY", support.KEY)
    config.write_text(
        "upstreams: [{name: a, provider: anthropic, url: 'https://x', api_key: k}]\n"
        "server: {tls: {enabled: false}}\nauth: {enabled: false}\n"
        f"audit: {{sink: file, dir: {directory}, keys: [{{kid: {support.KID}, "
        "key: '${AUDIT_KEY}'}]}\n"
    )
    assert run(["audit", "verify", str(directory), "--config", str(config)]) == 0, (
        capsys.readouterr()
    )
    assert "OK: 3 event(s)" in capsys.readouterr().out


def test_new_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["audit", "new-key"]) == 0
    first = capsys.readouterr().out.strip()
    assert len(parse_key(first)) == 32
    run(["audit", "new-key"])
    assert capsys.readouterr().out.strip() != first
