"""TLS of the running gateway: mTLS with the official SDK, rotation on disk, bad files."""

from __future__ import annotations

import asyncio
import copy
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pytest
import trustme
import yaml

from tests.conftest import Gateway, StartGateway, Upstream
from tests.support.eventually import eventually
from tests.support.ports import free_port

MODEL = "claude-sonnet-5-5"


def sdk(gw: Gateway, ctx: ssl.SSLContext) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=gw.url,
        api_key="client-key",
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(verify=ctx),
    )


@pytest.fixture
def client_ca(tmp_path: Path) -> tuple[trustme.CA, str]:
    ca = trustme.CA()
    path = tmp_path / "clients.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


async def test_mtls_through_the_gateway(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    client_ca: tuple[trustme.CA, str],
    upstream: Upstream,
) -> None:
    ca, bundle = client_ca
    cfg = copy.deepcopy(config_dict)
    cfg["server"]["tls"]["client_ca_file"] = bundle
    gw = await start_gateway(cfg)

    anonymous = sdk(gw, gw.client_ssl())
    with pytest.raises(anthropic.APIConnectionError):
        await anonymous.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    await anonymous.close()
    assert upstream.stub.requests == []

    ctx = gw.client_ssl()
    ca.issue_cert("app@example.org").configure_cert(ctx)
    known = sdk(gw, ctx)
    msg = await known.messages.create(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )
    await known.close()
    assert msg.content[0].type == "text"
    assert len(upstream.stub.requests) == 1


async def served(gw: Gateway) -> bytes:
    port = int(gw.url.rsplit(":", 1)[1])
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=gw.client_ssl(), server_hostname="localhost"
    )
    cert = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    return bytes(cert)


async def served_is(gw: Gateway, want: bytes) -> bool:
    return await served(gw) == want


async def test_rotation_on_disk_reaches_new_connections(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    cert_files: dict[str, str],
    tls_ca: trustme.CA,
) -> None:
    cfg = copy.deepcopy(config_dict)
    cfg["server"]["tls"]["reload_interval_seconds"] = 0.05
    gw = await start_gateway(cfg)
    before = await served(gw)

    rotated = tls_ca.issue_cert("localhost", "127.0.0.1")
    Path(cert_files["cert_file"]).write_bytes(
        b"".join(blob.bytes() for blob in rotated.cert_chain_pems)
    )
    Path(cert_files["key_file"]).write_bytes(rotated.private_key_pem.bytes())
    want = ssl.PEM_cert_to_DER_cert(rotated.cert_chain_pems[0].bytes().decode())
    # Up to ~5 s on a loaded machine; usually a few ticks.
    await eventually(lambda: served_is(gw, want), interval=0.025, what="the rotated certificate")
    assert await served(gw) == want != before
    assert gw.sample("zdr_gateway_tls_reloads_total", outcome="success") == 1

    # The admin endpoint exports the reload count and the new expiry for alerting.
    async with aiohttp.ClientSession() as http, http.get(gw.admin_url + "/metrics") as resp:
        text = await resp.text()
    assert 'zdr_gateway_tls_reloads_total{outcome="success"} 1.0' in text
    assert "zdr_gateway_tls_cert_expiry_timestamp_seconds " in text


def test_serve_names_an_unusable_key_file(config_dict: dict[str, Any], tmp_path: Path) -> None:
    cfg = copy.deepcopy(config_dict)
    bad_key = tmp_path / "other.key"
    other = trustme.CA().issue_cert("localhost")
    bad_key.write_bytes(other.private_key_pem.bytes())
    cfg["server"]["tls"]["key_file"] = str(bad_key)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(path)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    err = done.stderr.decode()
    assert done.returncode == 2
    assert str(bad_key) in err
    assert "server.tls.key_file" in err
    assert "does not match" in err
    assert "Traceback" not in err
    assert "PRIVATE KEY" not in err


def test_serve_names_a_missing_upstream_ca_bundle(
    config_dict: dict[str, Any], tmp_path: Path
) -> None:
    cfg = copy.deepcopy(config_dict)
    missing = tmp_path / "no-such-ca.pem"
    cfg["upstreams"][0]["ca_file"] = str(missing)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(path)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    err = done.stderr.decode()
    assert done.returncode == 2
    assert str(missing) in err
    assert "ca_file" in err
    assert "Traceback" not in err


def test_serve_with_workers_names_a_missing_certificate_before_starting_any(
    config_dict: dict[str, Any], tmp_path: Path
) -> None:
    cfg = copy.deepcopy(config_dict)
    missing = tmp_path / "missing.crt"
    cfg["server"]["workers"] = 2
    cfg["server"]["port"] = free_port()  # workers share fixed ports
    cfg["admin"]["port"] = free_port()
    cfg["server"]["tls"]["cert_file"] = str(missing)
    # Workers need the shared limiter; nothing connects to it before the files are read.
    cfg["ratelimit"] = {
        "backend": "redis",
        "redis_url": "redis://127.0.0.1:1/0",
        "failure_mode": "fail_closed",
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(path)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    err = done.stderr.decode()
    assert done.returncode == 2
    assert str(missing) in err
    assert "server.tls.cert_file" in err
    assert "worker" not in done.stdout.decode()  # no worker was started
