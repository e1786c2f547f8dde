"""A real redis-server on a free loopback port, started and stopped by tests.

A missing `redis-server` binary is a test failure, never a skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.eventually import eventually_blocking
from tests.support.ports import free_port


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        # The venv's bin first: where .ci/tools puts a redis-server built from PyPI.
        local = Path(sys.executable).parent / "redis-server"
        binary = str(local) if local.exists() else shutil.which("redis-server")
        assert binary, "redis-server is not installed: `make tools` installs it"
        self.binary = binary
        self.port = port or free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="zdr-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir.name,
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proc = self.proc

        def answers() -> bool:
            if proc.poll() is not None:  # fails at once: waiting longer cannot help
                pytest.fail("redis-server exited at start")
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        eventually_blocking(
            answers, timeout=10, what="redis-server to answer PING", ignore=(OSError,)
        )

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self.kill()
        self.dir.cleanup()
