"""A served gateway's audit trail: stdout verifies with --mixed; the encrypted directory
survives kill -9 under load and verifies after a restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import SpawnGateway
from tests.support import audit as support


async def test_stdout_audit_trail_of_a_served_gateway(
    spawn_gateway: SpawnGateway, config_dict: dict[str, Any]
) -> None:
    gp = await spawn_gateway(config_dict)
    body = {"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": []}
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "k"}
    async with aiohttp.ClientSession() as http:
        for path in ("/v1/messages", "/v1/messages/batches", "/v1/nope"):
            async with http.post(gp.url + path, json=body, headers=headers, ssl=gp.client_ssl()):
                pass
    assert gp.terminate() == 0
    lines = gp.log().splitlines()
    docs = [json.loads(line) for line in lines]  # every line of stdout/stderr is JSON
    events = [d for d in docs if "audit" in d]
    assert [e["status"] for e in events] == [200, 400, 404]  # a policy refusal is a 400
    assert events[1]["decisions"] == ["refuse:anthropic.batches"]
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "verify", "--mixed", str(gp.log_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    assert "OK: 3 event(s) in 1 chain(s)" in done.stdout


async def _load(url: str, ssl_ctx: ssl.SSLContext, stop: asyncio.Event, ids: list[str]) -> None:
    body = {"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": []}
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "k"}
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            try:
                async with http.post(
                    url + "/v1/messages", json=body, headers=headers, ssl=ssl_ctx
                ) as resp:
                    await resp.read()
                    ids.append(resp.headers["x-gateway-request-id"])
            except (aiohttp.ClientError, OSError):
                return  # the gateway is gone (kill -9)


@pytest.mark.slow
async def test_kill_9_under_load_then_restart_verifies(
    spawn_gateway: SpawnGateway, config_dict: dict[str, Any], tmp_path: Path
) -> None:
    directory = tmp_path / "audit"
    config_dict["audit"] = support.file_sink(directory, rotate_bytes=16384)
    gp = await spawn_gateway(config_dict)
    stop, before = asyncio.Event(), list[str]()
    load = [asyncio.create_task(_load(gp.url, gp.client_ssl(), stop, before)) for _ in range(16)]
    await asyncio.sleep(1.5)
    gp.proc.send_signal(signal.SIGKILL)  # mid-load: writes may be cut anywhere
    assert gp.proc.wait(timeout=10) == -signal.SIGKILL
    stop.set()
    await asyncio.gather(*load)
    segments = sorted(directory.glob("main.*.seg"))
    assert len(before) > 50  # it was under load...
    assert len(segments) >= 2  # ...and rotated
    last = segments[-1]
    data = last.read_bytes()
    if data.endswith(b"\n"):
        # SIGKILL lands between writes far more often than inside one: leave what a kill
        # inside write(2) leaves (half a record, or half a header), so the recovery path
        # is taken every run.
        start = data.rfind(b"\n", 0, len(data) - 1) + 1
        last.write_bytes(data[: start + 40])
    crashed = last.read_bytes().count(b"\n") + 1  # the cut line's number

    gp2 = await spawn_gateway(config_dict)  # restart on the same directory
    stop2, after = asyncio.Event(), list[str]()
    task = asyncio.create_task(_load(gp2.url, gp2.client_ssl(), stop2, after))
    await asyncio.sleep(0.5)
    stop2.set()
    await task
    assert gp2.terminate() == 0
    assert "truncated record recovered" in gp2.log()

    key = f"{support.KID}=AK"
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "verify", str(directory), "--key-env", key],
        capture_output=True,
        text=True,
        env={**os.environ, "AK": support.KEY},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note: ")]
    assert notes == [
        f"note: {last.name}: line {crashed}: truncated record (a crash while writing), "
        f"recorded by the next start in main.{int(last.name.split('.')[1]) + 1:08d}.seg"
    ], done.stdout
    _, events = support.read(directory)
    written = [e["request_id"] for e in events]
    assert set(after) <= set(written)  # every request after the restart is in the trail
    assert len(set(before) & set(written)) >= len(before) - 64  # at most the last turns lost
