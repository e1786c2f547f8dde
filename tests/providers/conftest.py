"""Cloud stand-ins on loopback and gateways in front of them (no network, no AWS/GCP account).

- `aws_env`: botocore's chain sees only what a test gives it (env keys by default; no
  shared files, no IMDS).
- `bedrock`: the Bedrock stand-in (tests/support/bedrock_standin.py) on plain HTTP;
  `bedrock_upstream(**bedrock_settings)` → an upstream config entry in front of it.
- `sdk(gateway)`: the official async SDK pointed at a gateway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web

from gateway.serve import server
from tests.conftest import Gateway
from tests.support.bedrock_standin import BedrockStandIn
from tests.support.vertex_standin import VertexStandIn

ACCESS_KEY, SECRET_KEY = "AKIASTANDIN000000001", "stand-in-secret-known-to-the-test"
EU_SONNET = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
MODELS = {"claude-sonnet-4-5": EU_SONNET}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_STS", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_ROLE_ARN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    return monkeypatch


def without_env_keys(env: pytest.MonkeyPatch) -> None:
    """No SigV4 keys in the environment: the test gives credentials another way, or none."""
    env.delenv("AWS_ACCESS_KEY_ID")
    env.delenv("AWS_SECRET_ACCESS_KEY")


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{server.bound_port(site)}"


@pytest.fixture
async def bedrock(aws_env: pytest.MonkeyPatch) -> AsyncIterator[tuple[BedrockStandIn, str]]:
    standin = BedrockStandIn(secrets={ACCESS_KEY: (SECRET_KEY, None)})
    runner, url = await serve(standin.app())
    yield standin, url
    await runner.cleanup()


BedrockUpstream = Callable[..., dict[str, Any]]


@pytest.fixture
def bedrock_upstream(bedrock: tuple[BedrockStandIn, str]) -> BedrockUpstream:
    standin, url = bedrock

    def make(**settings: Any) -> dict[str, Any]:
        extra: dict[str, Any] = {
            k: settings.pop(k) for k in ("api_key", "labels", "prefix") if k in settings
        }
        standin.mantle = settings.get("mode", "mantle") == "mantle"
        return {
            "name": "bedrock",
            "provider": "bedrock",
            "url": url,
            "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 30},
            "bedrock": {
                "region": standin.region,
                "models": MODELS,
                "refresh_seconds": 0.2,
                "check_invocation_logging": False,
                **settings,
            },
            **extra,
        }

    return make


def sdk(gateway: Gateway, **kwargs: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=gateway.url,
        api_key="client-key-not-for-upstream",
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(verify=gateway.client_ssl()),
        **kwargs,
    )


VERTEX_SONNET = "claude-sonnet-4-5@20250929"


@pytest.fixture
async def vertex(tmp_path: Path) -> AsyncIterator[tuple[VertexStandIn, Path]]:
    """The Vertex stand-in and a service-account key file whose token_uri points at it."""
    standin = VertexStandIn()
    runner, url = await serve(standin.app())
    standin.url = url
    yield standin, standin.service_account_file(tmp_path / "service-account.json")
    await runner.cleanup()


VertexUpstream = Callable[..., dict[str, Any]]


@pytest.fixture
def vertex_upstream(vertex: tuple[VertexStandIn, Path]) -> VertexUpstream:
    standin, key_file = vertex

    def make(**settings: Any) -> dict[str, Any]:
        extra: dict[str, Any] = {k: settings.pop(k) for k in ("labels", "prefix") if k in settings}
        return {
            "name": "vertex",
            "provider": "vertex",
            "url": standin.url,
            "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 30},
            "vertex": {
                "project": "standin-project",
                "region": "europe-west4",
                "credentials_file": str(key_file),
                "models": {"claude-sonnet-4-5": VERTEX_SONNET},
                **settings,
            },
            **extra,
        }

    return make
