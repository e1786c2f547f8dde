"""A served gateway's stdout: JSON lines only, and its audit events verify with --mixed."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import aiohttp

from tests.conftest import SpawnGateway


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
