"""Shared fixtures: real TLS (trustme), a running stand-in upstream, a running gateway.

- `tls_ca`: a trustme CA; `cert_files`: a localhost server cert/key on disk.
- `upstream`: the stand-in Anthropic API (gateway.demo.stub_anthropic) over real TLS on loopback.
  `upstream.stub.behaviour` steers it, `upstream.stub.requests` records what reached it.
- `config_dict`: the gateway config as a dict (mutate it, then `start_gateway`).
- `start_gateway(cfg_dict)`: starts a gateway in this event loop → `Gateway`.
- `gateway`: one started with the default config.
- `anthropic_client`: the official SDK pointed at `gateway`, trusting the test CA.
- `spawn_gateway(cfg_dict, env=None)`: `python -m gateway serve` in a subprocess on free
  ports → `GatewayProcess` (its stdout/stderr go to `proc.log_path`; stopped at teardown).
"""

from __future__ import annotations

import copy
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pytest
import trustme
import yaml
from prometheus_client import CollectorRegistry

from gateway import config as config_mod
from gateway.demo.stub_anthropic import StubUpstream
from gateway.demo.stub_openai import StubOpenAI
from gateway.observe.metrics import Metrics
from gateway.serve import server
from tests.support.eventually import eventually
from tests.support.ports import free_port
from tests.support.standins import serve_tls


@dataclass
class Upstream:
    stub: StubUpstream
    url: str
    port: int


@dataclass
class Gateway:
    url: str
    admin_url: str
    ca_path: str
    registry: CollectorRegistry
    running: server.Running
    config: config_mod.Config

    def client_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_path)

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cert_files(tls_ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    cert = tls_ca.issue_cert("localhost", "127.0.0.1")
    paths = {
        "cert_file": tmp_path / "tls.crt",
        "key_file": tmp_path / "tls.key",
        "ca_file": tmp_path / "ca.crt",
    }
    cert.cert_chain_pems[0].write_to_path(paths["cert_file"])
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(paths["cert_file"], append=True)
    cert.private_key_pem.write_to_path(paths["key_file"])
    tls_ca.cert_pem.write_to_path(paths["ca_file"])
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture
async def upstream(cert_files: dict[str, str]) -> AsyncIterator[Upstream]:
    stub = StubUpstream()
    runner, port = await serve_tls(
        stub.app, cert_files["cert_file"], cert_files["key_file"], handler_cancellation=True
    )
    yield Upstream(stub, f"https://localhost:{port}", port)
    stub.behaviour.resume.set()
    await runner.cleanup()


@pytest.fixture
def config_dict(cert_files: dict[str, str], upstream: Upstream) -> dict[str, Any]:
    return {
        "server": {
            "host": "127.0.0.1",
            "port": 0,
            "tls": {"cert_file": cert_files["cert_file"], "key_file": cert_files["key_file"]},
            "shutdown_grace_seconds": 5,
        },
        "admin": {"host": "127.0.0.1", "port": 0},
        "upstreams": [
            {
                "name": "anthropic",
                "provider": "anthropic",
                "url": upstream.url,
                "api_key": upstream.stub.api_key,
                "ca_file": cert_files["ca_file"],
                "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 30},
            }
        ],
        "auth": {"enabled": False},
        "metrics": {"teams": ["anonymous"]},
    }


@pytest.fixture
async def openai_stub(cert_files: dict[str, str]) -> AsyncIterator[tuple[StubOpenAI, str]]:
    """The stand-in OpenAI-compatible API over real TLS: (stub, its base URL)."""
    stub = StubOpenAI()
    runner, port = await serve_tls(stub.app, cert_files["cert_file"], cert_files["key_file"])
    yield stub, f"https://localhost:{port}"
    await runner.cleanup()


StartGateway = Callable[[dict[str, Any]], Awaitable[Gateway]]


@pytest.fixture
async def start_gateway(cert_files: dict[str, str]) -> AsyncIterator[StartGateway]:
    started: list[Gateway] = []

    async def start(cfg: dict[str, Any]) -> Gateway:
        config = config_mod.parse(yaml.safe_dump(copy.deepcopy(cfg)), source="test.yaml", env={})
        registry = CollectorRegistry()
        running = await server.start(config, Metrics(registry))
        scheme = "https" if config.server.tls.enabled else "http"
        gw = Gateway(
            url=f"{scheme}://localhost:{running.port}",
            admin_url=f"http://127.0.0.1:{running.admin_port}",
            ca_path=cert_files["ca_file"],
            registry=registry,
            running=running,
            config=config,
        )
        started.append(gw)
        return gw

    yield start
    for gw in started:
        await gw.running.stop()


@pytest.fixture
async def gateway(start_gateway: StartGateway, config_dict: dict[str, Any]) -> Gateway:
    return await start_gateway(config_dict)


@pytest.fixture
async def anthropic_client(gateway: Gateway) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(
        base_url=gateway.url,
        api_key="client-key-not-for-upstream",
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(verify=gateway.client_ssl()),
    )
    yield client
    await client.close()


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    url: str
    admin_url: str
    ca_path: str
    log_path: Path
    config_path: Path

    def client_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


SpawnGateway = Callable[..., Awaitable[GatewayProcess]]


@pytest.fixture
async def spawn_gateway(cert_files: dict[str, str], tmp_path: Path) -> AsyncIterator[SpawnGateway]:
    procs: list[GatewayProcess] = []

    async def spawn(cfg: dict[str, Any], env: dict[str, str] | None = None) -> GatewayProcess:
        cfg = copy.deepcopy(cfg)
        cfg["server"]["port"] = cfg["server"].get("port") or free_port()
        cfg["admin"]["port"] = cfg["admin"].get("port") or free_port()
        n = len(procs)
        config_path = tmp_path / f"gateway-{n}.yaml"
        config_path.write_text(yaml.safe_dump(cfg))
        log_path = tmp_path / f"gateway-{n}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--config", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        scheme = "https" if cfg["server"]["tls"].get("enabled", True) else "http"
        gp = GatewayProcess(
            proc,
            f"{scheme}://localhost:{cfg['server']['port']}",
            f"http://127.0.0.1:{cfg['admin']['port']}",
            cert_files["ca_file"],
            log_path,
            config_path,
        )
        procs.append(gp)
        await wait_ready(gp)
        return gp

    yield spawn
    for gp in procs:
        if gp.proc.poll() is None:
            gp.proc.kill()
            gp.proc.wait()


async def wait_ready(gp: GatewayProcess, timeout: float = 15) -> None:
    await wait_until_ready(gp.proc, gp.admin_url, gp.log, timeout)


async def wait_until_ready(
    proc: subprocess.Popen[bytes], admin_url: str, log: Callable[[], str], timeout: float
) -> None:
    """Poll `/readyz` until 200; fail with the process's log if it exits or times out."""
    import aiohttp

    async with aiohttp.ClientSession() as http:

        async def ready() -> bool:
            if proc.poll() is not None:  # fails at once: it will not become ready
                pytest.fail(f"gateway exited {proc.returncode}:\n{log()}")
            async with http.get(admin_url + "/readyz") as resp:
                return resp.status == 200

        try:
            await eventually(ready, timeout=timeout, interval=0.05, ignore=(aiohttp.ClientError,))
        except AssertionError:
            raise AssertionError(f"gateway not ready in {timeout}s:\n{log()}") from None
