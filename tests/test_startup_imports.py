"""`serve` loads PyJWT and cryptography only when its config needs them, and then at start-up.

They are ~9 MiB of the gateway's idle RSS (bench/README.md). A child process runs the
real `zdr-gateway serve` path (argument parsing with every subcommand registered,
config load, hardening, TLS file checks, app build, listeners bound) and, once the
gateway is listening, reports which of those modules are loaded — before any request,
so a feature that needs them is proven to load them at start-up, not on first use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.auth.keyset import write_key_pair
from tests.support import audit as support_audit

HEAVY = ("cryptography", "cryptography.x509", "jwt", "gateway.auth.tokens", "gateway.auth.oidc")
# The cloud SDKs (~20 MiB RSS for botocore): only for a configured cloud upstream.
CLOUD = ("botocore", "botocore.auth", "google.auth", "google.oauth2")

CHILD = """
import json, sys
from gateway import cli
from gateway.serve import server

async def serve(config, config_path=None, reuse_port=False):
    running = await server.start(config, config_path=config_path)
    await running.stop()

server.serve = serve
code = cli.main(["serve", "--config", sys.argv[1]])
print(json.dumps({"code": code, "loaded": [m for m in sys.argv[2:] if m in sys.modules]}))
"""


def serve_once(tmp_path: Path, config: dict[str, Any]) -> set[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), *HEAVY, *CLOUD],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stderr
    return set(report["loaded"])


def plain_config() -> dict[str, Any]:
    """The bench's shape: plaintext listener, auth off, an upstream on the system CAs."""
    return {
        "server": {"host": "127.0.0.1", "port": 0, "tls": {"enabled": False}},
        "admin": {"host": "127.0.0.1", "port": 0},
        "upstreams": [
            {"name": "a", "provider": "anthropic", "url": "http://127.0.0.1:9", "api_key": "k"}
        ],
        "auth": {"enabled": False},
    }


def test_plaintext_without_auth_loads_neither(tmp_path: Path) -> None:
    assert serve_once(tmp_path, plain_config()) == set()


@pytest.mark.parametrize(
    ("feature", "expected"),
    [
        ("tls", {"cryptography", "cryptography.x509"}),
        ("upstream_ca_file", {"cryptography", "cryptography.x509"}),
        ("auth", {"cryptography", "jwt", "gateway.auth.tokens"}),
        ("audit_file", {"cryptography"}),
    ],
)
def test_a_feature_that_needs_them_loads_them_at_startup(
    feature: str, expected: set[str], tmp_path: Path, cert_files: dict[str, str]
) -> None:
    config = plain_config()
    if feature == "tls":
        tls = {"cert_file": cert_files["cert_file"], "key_file": cert_files["key_file"]}
        config["server"]["tls"] = tls
    elif feature == "upstream_ca_file":
        config["upstreams"][0]["ca_file"] = cert_files["ca_file"]
    elif feature == "audit_file":
        config["audit"] = support_audit.file_sink(tmp_path / "audit")
    else:
        _, public = write_key_pair(tmp_path / "keys", "k1")
        config["auth"] = {"signing_keys": [{"kid": "k1", "public_key_file": str(public)}]}
    loaded = serve_once(tmp_path, config)
    assert expected <= loaded, loaded
    assert "gateway.auth.oidc" not in loaded  # no issuer listed


def test_a_bedrock_upstream_loads_botocore_and_nothing_else_does(tmp_path: Path) -> None:
    config = plain_config()
    config["upstreams"].append(
        {
            "name": "b",
            "provider": "bedrock",
            "prefix": "/bedrock",
            "url": "http://127.0.0.1:9",
            "api_key": "bedrock-key",
            "bedrock": {"region": "eu-west-1", "check_invocation_logging": False},
        }
    )
    loaded = serve_once(tmp_path, config)
    assert {"botocore", "botocore.auth"} <= loaded, loaded
    assert not {"google.auth", "google.oauth2"} & loaded


def test_a_vertex_upstream_loads_google_auth_not_botocore(tmp_path: Path) -> None:
    config = plain_config()
    config["upstreams"].append(
        {
            "name": "v",
            "provider": "vertex",
            "prefix": "/vertex",
            "url": "http://127.0.0.1:9",
            # Unreadable on purpose: start-up logs a warning and serves 503s until it is.
            "vertex": {"project": "my-project", "region": "eu", "credentials_file": "missing"},
        }
    )
    loaded = serve_once(tmp_path, config)
    assert {"google.auth", "google.oauth2"} <= loaded, loaded
    assert "botocore" not in loaded


PII_LIBS = ("phonenumbers", "stdnum.iban", "stdnum.luhn", "ahocorasick_rs")


def test_pii_libraries_load_only_for_the_categories_on(tmp_path: Path) -> None:
    """Off (the default): none of them. On: at start-up, only those the categories need."""

    def loaded_with(pii: dict[str, Any] | None) -> set[str]:
        config = plain_config()
        if pii is not None:
            config["pii"] = pii
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), *PII_LIBS],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return set(json.loads(proc.stdout.strip().splitlines()[-1])["loaded"])

    assert loaded_with(None) == set()
    assert loaded_with({"default": {"email": "mask"}}) == set()
    on = {"phone": "pseudonymise", "card": "mask", "terms": "pseudonymise"}
    loaded = loaded_with({"default": on, "terms": {"client": ["Acme Corp"]}})
    assert loaded == {"phonenumbers", "stdnum.luhn", "ahocorasick_rs"}
