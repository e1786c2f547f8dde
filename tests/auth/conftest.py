"""Auth fixtures: signing key pairs on disk and a real redis-server on a free port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from auth_helpers import Signer, free_port

from gateway.auth.keyset import load_private_key, write_key_pair


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    private_path, public_path = write_key_pair(tmp_path / "keys", "k1")
    return Signer("k1", private_path, public_path, load_private_key(private_path))


@pytest.fixture
def other_signer(tmp_path: Path) -> Signer:
    private_path, public_path = write_key_pair(tmp_path / "keys", "k2")
    return Signer("k2", private_path, public_path, load_private_key(private_path))


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port, no persistence."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is required (apt-get install redis-server)"
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
