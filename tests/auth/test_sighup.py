"""SIGHUP on a real `zdr-gateway serve` process: revocation without restart; a broken
config is refused, the running one stays, and the log says why."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from anthropic.types import MessageParam

from tests.auth.auth_helpers import Signer

PROMPT: list[MessageParam] = [{"role": "user", "content": "Hi"}]


def write(path: Path, signer: Signer, auth: dict[str, Any] | None = None) -> None:
    cfg = {
        "server": {"host": "127.0.0.1", "port": 0, "tls": {"enabled": False}},
        "admin": {"host": "127.0.0.1", "port": 0},
        # Nothing listens there: an accepted request ends as a 502, a refused one as a 401.
        "upstreams": [
            {
                "name": "anthropic",
                "provider": "anthropic",
                "url": "http://127.0.0.1:9",
                "api_key": "sk-upstream",
                "timeouts": {"connect": 1},
            }
        ],
        "auth": {
            "signing_keys": [{"kid": signer.kid, "public_key_file": str(signer.public_path)}],
            **(auth or {}),
        },
    }
    path.write_text(yaml.safe_dump(cfg))


class Proc:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []

    async def wait_for(self, message: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for seen in self.lines:
            if seen.get("message") == message:
                return seen
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), 20)
            assert raw, "the gateway exited"
            try:
                line: dict[str, Any] = json.loads(raw)
            except ValueError:
                continue
            self.lines.append(line)
            if message in str(line.get("message")):
                return line


@pytest.fixture
async def served(tmp_path: Path, signer: Signer) -> AsyncIterator[tuple[Proc, Path, str]]:
    path = tmp_path / "gateway.yaml"
    write(path, signer)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--config",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    p = Proc(proc)
    try:
        listening = await p.wait_for("listening")
        yield p, path, f"http://127.0.0.1:{listening['port']}"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)


async def status(url: str, key: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url + "/v1/messages",
            json={"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": PROMPT},
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        ) as resp,
    ):
        await resp.read()
        return resp.status


async def test_sighup_reload(served: tuple[Proc, Path, str], signer: Signer) -> None:
    p, path, url = served
    key = signer.issue_live()
    assert await status(url, key) == 502  # accepted by auth, upstream unreachable

    path.write_text("auth:\n  revoked: [unclosed\n")
    p.proc.send_signal(signal.SIGHUP)
    refused = await p.wait_for("auth config NOT reloaded")
    assert "not valid YAML" in json.dumps(refused)
    assert await status(url, key) == 502  # the old config still runs

    write(path, signer, {"revoked": ["app-1"]})
    p.proc.send_signal(signal.SIGHUP)
    await p.wait_for("auth config reloaded")
    assert await status(url, key) == 401
    assert key not in json.dumps(p.lines)
