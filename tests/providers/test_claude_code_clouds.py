"""Claude Code (the real CLI, print mode) through the gateway to the cloud stand-ins.

- default mode: `ANTHROPIC_BASE_URL` at the gateway, its key as `ANTHROPIC_AUTH_TOKEN`, a
  Bedrock (invoke) upstream behind (translated both ways), or Vertex (at /vertex);
- Bedrock mode: `CLAUDE_CODE_USE_BEDROCK=1`, `ANTHROPIC_BEDROCK_BASE_URL=<gateway>/bedrock`,
  `CLAUDE_CODE_SKIP_BEDROCK_AUTH=1`: the event stream passed back byte for byte;
- Vertex mode: `CLAUDE_CODE_USE_VERTEX=1`, `ANTHROPIC_VERTEX_BASE_URL=<gateway>/vertex/v1`.

The CLI is the one pinned in tests/clients/package.json, installed by `make clients` (the
one place the suite's client versions live; tests/clients runs the same binary).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Gateway, StartGateway
from tests.providers.conftest import EU_SONNET, VERTEX_SONNET, BedrockUpstream, VertexUpstream
from tests.support.bedrock_standin import BedrockStandIn
from tests.support.vertex_standin import VertexStandIn

CLAUDE = str(Path(__file__).parents[1] / "clients" / "node_modules" / ".bin" / "claude")
if not Path(CLAUDE).exists():  # a clear failure, not a skip: `make test` installs it
    raise RuntimeError("the Claude Code cloud tests need `make clients` (Claude Code)")


@pytest.fixture
async def gw(
    bedrock_upstream: BedrockUpstream,
    vertex_upstream: VertexUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
) -> Gateway:
    config_dict["upstreams"] = [
        bedrock_upstream(mode="invoke"),
        {**bedrock_upstream(mode="invoke"), "name": "bedrock-native", "prefix": "/bedrock"},
        vertex_upstream(prefix="/vertex"),
    ]
    # Claude Code sends betas of its own release (claude-code-*, ...): forwarded, as the
    # gateway guidance says; the retention ones stay refused by their rules.
    config_dict["policy"] = {"betas": {"unlisted": "allow"}}
    return await start_gateway(config_dict)


async def claude(
    gw: Gateway, tmp_path: Path, env: dict[str, str], prompt: str = "Say hi"
) -> tuple[int, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    base = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "NODE_EXTRA_CA_CERTS": gw.ca_path,
        "ANTHROPIC_AUTH_TOKEN": "gateway-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        CLAUDE, "-p", prompt, "--max-turns", "1",
        env={**base, **env}, cwd=str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(errors="replace")


def bedrock_mode(gw: Gateway) -> dict[str, str]:
    """Claude Code's Bedrock mode at the gateway's /bedrock prefix, AWS auth skipped."""
    return {
        "CLAUDE_CODE_USE_BEDROCK": "1",
        "CLAUDE_CODE_SKIP_BEDROCK_AUTH": "1",
        "ANTHROPIC_BEDROCK_BASE_URL": gw.url + "/bedrock",
        "AWS_REGION": "eu-central-1",
        "ANTHROPIC_MODEL": EU_SONNET,
        "ANTHROPIC_SMALL_FAST_MODEL": EU_SONNET,
    }


async def test_default_mode_through_bedrock_translation(
    gw: Gateway, bedrock: tuple[BedrockStandIn, str], tmp_path: Path
) -> None:
    standin, _ = bedrock
    env = {"ANTHROPIC_BASE_URL": gw.url, "ANTHROPIC_MODEL": "claude-sonnet-4-5",
           "ANTHROPIC_SMALL_FAST_MODEL": "claude-sonnet-4-5",
           "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1"}  # fmt: skip
    code, out = await claude(gw, tmp_path, env)
    assert code == 0, out
    assert standin.behaviour.reply in out
    assert any(s.path.endswith("/invoke-with-response-stream") for s in standin.seen)
    # Its model discovery is answered from the Bedrock upstream's models map.
    labels = {"provider": "anthropic", "route": "models", "team": "anonymous"}
    assert gw.sample("zdr_gateway_requests_total", status_class="2xx", code="200", **labels) >= 1
    assert not any("models" in s.path and "/model/" not in s.path for s in standin.seen)


async def test_bedrock_mode(
    gw: Gateway, bedrock: tuple[BedrockStandIn, str], tmp_path: Path
) -> None:
    standin, _ = bedrock
    env = bedrock_mode(gw)
    code, out = await claude(gw, tmp_path, env)
    assert code == 0, out
    assert standin.behaviour.reply in out
    assert any(s.path == f"/model/{EU_SONNET}/invoke-with-response-stream" for s in standin.seen)


async def test_vertex_mode(gw: Gateway, vertex: tuple[VertexStandIn, Path], tmp_path: Path) -> None:
    standin, _ = vertex
    env = {
        "CLAUDE_CODE_USE_VERTEX": "1",
        "CLAUDE_CODE_SKIP_VERTEX_AUTH": "1",
        "ANTHROPIC_VERTEX_BASE_URL": gw.url + "/vertex/v1",
        "ANTHROPIC_VERTEX_PROJECT_ID": "client-project",
        "CLOUD_ML_REGION": "us-east5",
        "ANTHROPIC_MODEL": VERTEX_SONNET,
        "ANTHROPIC_SMALL_FAST_MODEL": VERTEX_SONNET,
    }
    code, out = await claude(gw, tmp_path, env)
    assert code == 0, out
    assert standin.reply in out
    assert any(s.path.endswith(f"{VERTEX_SONNET}:streamRawPredict") for s in standin.seen)


async def test_default_mode_through_vertex(
    gw: Gateway, vertex: tuple[VertexStandIn, Path], tmp_path: Path
) -> None:
    standin, _ = vertex
    env = {"ANTHROPIC_BASE_URL": gw.url + "/vertex", "ANTHROPIC_MODEL": "claude-sonnet-4-5",
           "ANTHROPIC_SMALL_FAST_MODEL": "claude-sonnet-4-5"}  # fmt: skip
    code, out = await claude(gw, tmp_path, env)
    assert code == 0, out
    assert standin.reply in out
    assert any(s.path.endswith(f"{VERTEX_SONNET}:streamRawPredict") for s in standin.seen)


async def test_bedrock_mode_with_pseudonymisation(
    bedrock_upstream: BedrockUpstream,
    bedrock: tuple[BedrockStandIn, str],
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Claude Code in Bedrock mode takes the event stream the gateway rebuilt around the
    restored text (frames re-encoded with their own headers and valid CRCs)."""
    standin, _ = bedrock
    standin.behaviour.echo_placeholders = True
    email = "zq.cc.bedrock.canary.4b7d@example.org"
    config_dict["upstreams"] = [
        {**bedrock_upstream(mode="invoke"), "name": "bedrock-native", "prefix": "/bedrock"}
    ]
    config_dict["policy"] = {"betas": {"unlisted": "allow"}}
    config_dict["pii"] = {"default": {"email": "pseudonymise"}}
    gw = await start_gateway(config_dict)
    env = bedrock_mode(gw)
    code, out = await claude(gw, tmp_path, env, f"Say hi to {email}")
    assert code == 0, out
    # Its system prompt has an address of its own (noreply@...): pseudonymised too.
    assert out.startswith("Reply for ")
    assert email in out
    streamed = [s for s in standin.seen if s.path.endswith("/invoke-with-response-stream")]
    assert streamed
    assert all(email.encode() not in s.body for s in standin.seen)
