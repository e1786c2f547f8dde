"""The CLI never fails without saying why: one line on stderr, the gateway's own words
and the exception class, never the exception's text; `serve` likewise before it listens."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import cli
from gateway.demo import run as demo_run

PLAIN = """\
server:
  host: 127.0.0.1
  port: {port}
  tls: {tls}
admin:
  host: 127.0.0.1
  port: 0
upstreams:
  - name: anthropic
    provider: anthropic
    url: http://127.0.0.1:9
    api_key: sk-upstream
auth: {auth}
"""
NO_TLS = "{enabled: false}"
NO_AUTH = "{enabled: false}"


def serve(
    tmp_path: Path, *, port: int = 0, tls: str = NO_TLS, auth: str = NO_AUTH
) -> tuple[int, list[str]]:
    config = tmp_path / "gateway.yaml"
    config.write_text(PLAIN.format(port=port, tls=tls, auth=auth))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    return done.returncode, done.stderr.splitlines()


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_serve_on_a_port_in_use_says_so(tmp_path: Path, taken_port: int) -> None:
    code, err = serve(tmp_path, port=taken_port)
    assert code != 0
    assert err == [
        f"zdr-gateway serve: server: cannot listen on 127.0.0.1:{taken_port}: "
        "Address already in use"
    ]


def test_serve_with_a_missing_signing_key_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "keys" / "k1.pub.pem"
    auth = f"{{signing_keys: [{{kid: k1, public_key_file: {missing}}}]}}"
    code, err = serve(tmp_path, auth=auth)
    assert code != 0
    assert len(err) == 1
    assert str(missing) in err[0]
    assert "No such file or directory" in err[0]


def test_serve_with_a_certificate_that_does_not_load_names_the_option(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_text("not a certificate\n")
    (tmp_path / "tls.key").write_text("not a key\n")
    code, err = serve(tmp_path, tls="{cert_file: tls.crt, key_file: tls.key}")
    assert code != 0
    assert len(err) == 1
    assert "server.tls.cert_file" in err[0]


def test_an_unexpected_failure_is_one_line_with_the_class_and_never_its_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = "CANARY-cli-7f3a"

    def boom() -> int:
        raise LookupError(f"a message quoting client text: {canary}")

    monkeypatch.setattr(demo_run, "main", boom)
    assert cli.main(["demo"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "zdr-gateway demo: unexpected error (LookupError); nothing was written"
    ]
    assert canary not in err


def test_an_os_error_gives_the_os_words_not_its_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def denied() -> int:
        raise PermissionError(13, "quoting CANARY-cli-os", "/secret/CANARY-cli-os")

    monkeypatch.setattr(demo_run, "main", denied)
    assert cli.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["zdr-gateway demo: Permission denied (PermissionError)"]
