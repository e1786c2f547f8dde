"""Canary proof for the cloud upstreams: content through Bedrock (invoke translation and the
byte-for-byte native path) and Vertex, on success and error paths, is retained nowhere.

A real `python -m gateway serve` (DEBUG logs, audit file, its own TMPDIR and HOME) in front
of the in-process stand-ins; the canary goes in the prompt, comes back in the completion
and in the cloud's error messages. Neither the canary nor the gateway's AWS secret or
Google token may appear in its output, audit trail, /metrics, /zdr/posture or files.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from botocore.eventstream import EventStreamBuffer

from tests.conftest import wait_until_ready
from tests.providers.conftest import ACCESS_KEY, EU_SONNET, SECRET_KEY, serve
from tests.support import audit as support_audit
from tests.support.bedrock_standin import BedrockStandIn, Behaviour
from tests.support.ports import free_port
from tests.support.vertex_standin import VertexStandIn
from tests.zdr.conftest import canary

pytestmark = pytest.mark.asyncio(loop_scope="module")
MODEL = "claude-sonnet-4-5"


@dataclass
class Clouds:
    url: str
    admin_url: str
    root: Path
    log_path: Path
    audit_path: Path
    bedrock: BedrockStandIn
    vertex: VertexStandIn

    async def call(self, path: str, body: Any) -> tuple[int, bytes]:
        headers = {"anthropic-version": "2023-06-01"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + path, json=body, headers=headers) as resp,
        ):
            return resp.status, await resp.read()

    async def leaks(self, secret: str) -> list[str]:
        found = []
        if secret in self.log_path.read_text(errors="replace"):
            found.append("stdout/stderr")
        # The trail decrypted, and each segment's raw bytes (ciphertext holds no value).
        trail = support_audit.events(self.audit_path)
        if any(secret in json.dumps(e, separators=(",", ":")) for e in trail):
            found.append("audit")
        if self.audit_path.exists():
            for f in sorted(self.audit_path.iterdir()):
                if secret.encode() in f.read_bytes():
                    found.append(f"audit file {f.name}")
        async with aiohttp.ClientSession() as http:
            for name in ("/metrics", "/zdr/posture"):
                async with http.get(self.admin_url + name) as resp:
                    if secret in await resp.text():
                        found.append(name)
        for sub in ("tmp", "home"):
            for f in (self.root / sub).rglob("*"):
                if f.is_file() and secret.encode() in f.read_bytes():
                    found.append(str(f))
        return found


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clouds(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Clouds]:
    root = tmp_path_factory.mktemp("zdr-clouds")
    for sub in ("tmp", "home", "etc", "var"):
        (root / sub).mkdir()
    bedrock = BedrockStandIn(secrets={ACCESS_KEY: (SECRET_KEY, None)}, mantle=False)
    vertex = VertexStandIn()
    b_runner, b_url = await serve(bedrock.app())
    v_runner, v_url = await serve(vertex.app())
    vertex.url = v_url
    key_file = vertex.service_account_file(root / "etc/sa.json")
    port, admin_port = free_port(), free_port()
    audit_path = root / "var/audit"
    timeouts = {"connect": 2, "first_byte": 5, "idle": 5, "total": 20}
    config = {
        "server": {"host": "127.0.0.1", "port": port, "tls": {"enabled": False}},
        "admin": {"host": "127.0.0.1", "port": admin_port},
        "upstreams": [
            {"name": "bedrock", "provider": "bedrock", "url": b_url, "timeouts": timeouts,
             "bedrock": {"region": bedrock.region, "mode": "invoke", "models": {MODEL: EU_SONNET},
                         "control_url": b_url}},
            {"name": "vertex", "provider": "vertex", "url": v_url, "prefix": "/vertex",
             "timeouts": timeouts,
             "vertex": {"project": "standin-project", "region": "europe-west4",
                        "credentials_file": str(key_file),
                        "models": {MODEL: "claude-sonnet-4-5@20250929"}}},
        ],
        "auth": {"enabled": False},
        "metrics": {"teams": ["anonymous"], "models": [MODEL]},
        "logging": {"level": "debug"},
        "audit": {
            **support_audit.file_sink(audit_path),
            "keys": [{"kid": support_audit.KID, "key": "${AUDIT_ENC_KEY}"}],
        },
    }  # fmt: skip
    config_path = root / "etc/gateway.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = root / "gateway.log"
    env = {
        **os.environ,
        "TMPDIR": str(root / "tmp"),
        "HOME": str(root / "home"),
        "AUDIT_ENC_KEY": support_audit.KEY,
        "PYTHONPATH": str(Path(__file__).parents[2]),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_CONFIG_FILE": str(root / "etc/none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "etc/none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    cmd = [sys.executable, "-B", "-m", "gateway", "serve", "--config", str(config_path)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        await wait_until_ready(proc, f"http://127.0.0.1:{admin_port}", log_path.read_text, 30)
        yield Clouds(
            f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}", root, log_path,
            audit_path, bedrock, vertex,
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        await b_runner.cleanup()
        await v_runner.cleanup()


def body(secret: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 16,
        "system": f"system {secret}",
        "messages": [{"role": "user", "content": f"prompt {secret}"}],
        **extra,
    }


async def assert_clean(clouds: Clouds, secret: str) -> None:
    assert await clouds.leaks(secret) == []
    assert await clouds.leaks(SECRET_KEY) == []
    assert await clouds.leaks("ya29.standin") == []


@pytest.mark.parametrize("stream", [False, True])
async def test_bedrock_invoke_prompt_and_completion(clouds: Clouds, stream: bool) -> None:
    secret = canary("bedrock")
    clouds.bedrock.behaviour = Behaviour(reply=f"answer {secret}")
    status, answer = await clouds.call("/v1/messages", body(secret, stream=stream))
    assert status == 200, answer
    assert secret.encode() in answer
    assert any(secret.encode() in s.body for s in clouds.bedrock.seen)  # it did travel
    await assert_clean(clouds, secret)


async def test_bedrock_native_event_stream(clouds: Clouds) -> None:
    secret = canary("native")
    clouds.bedrock.behaviour = Behaviour(reply=f"answer {secret}")
    doc = {"max_tokens": 16, "messages": [{"role": "user", "content": f"prompt {secret}"}]}
    status, answer = await clouds.call(f"/model/{EU_SONNET}/invoke-with-response-stream", doc)
    assert status == 200
    assert answer == clouds.bedrock.last_stream
    buffer = EventStreamBuffer()
    buffer.add_data(answer)
    decoded = b"".join(base64.b64decode(json.loads(m.payload)["bytes"]) for m in buffer)
    assert secret.encode() in decoded  # inside the base64 frames
    assert any(secret.encode() in s.body for s in clouds.bedrock.seen)
    await assert_clean(clouds, secret)


@pytest.mark.parametrize("where", ["http", "frame"])
async def test_bedrock_error_messages(clouds: Clouds, where: str) -> None:
    secret = canary("bedrock-error")
    if where == "http":
        clouds.bedrock.behaviour = Behaviour(fail=(400, "ValidationException"))
    else:
        clouds.bedrock.behaviour = Behaviour(exception_after=(1, "validationException"))
    clouds.bedrock.behaviour.fail_message = f"bad input near {secret}"
    status, answer = await clouds.call("/v1/messages", body(secret, stream=True))
    assert status == (400 if where == "http" else 200)
    assert secret.encode() in answer  # the cloud's message is the client's to read
    await assert_clean(clouds, secret)


@pytest.mark.parametrize("fail", [None, (429, "RESOURCE_EXHAUSTED")])
async def test_vertex(clouds: Clouds, fail: tuple[int, str] | None) -> None:
    secret = canary("vertex")
    clouds.vertex.reply = f"answer {secret}"
    clouds.vertex.fail = fail
    clouds.vertex.fail_message = f"quota near {secret}"
    status, answer = await clouds.call("/vertex/v1/messages", body(secret, stream=True))
    assert status == (200 if fail is None else 429)
    assert secret.encode() in answer
    await assert_clean(clouds, secret)


async def test_detector_finds_what_the_gateway_does_record(clouds: Clouds) -> None:
    # Metadata is recorded: the same search finds it, so an empty result above means something.
    found = await clouds.leaks("invocation_logging")
    assert "/zdr/posture" in found
    assert "/metrics" in await clouds.leaks('upstream="bedrock"')
    assert "audit" in await clouds.leaks('"upstream":"vertex"')
