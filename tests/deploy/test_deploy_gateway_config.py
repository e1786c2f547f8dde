"""The config each overlay ships is valid for the gateway it runs: parsed by the real
loader (gateway.config.parse), with exactly the environment the Deployment provides, and
every file, port and host in it matches what the manifests mount and expose."""

from __future__ import annotations

import os
import posixpath
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.config import Config, ConfigError, parse
from tests.deploy.deploy_support import KUSTOMIZE, Rendered, find, gateway_container, one


def config_text(docs: list[dict[str, Any]]) -> str:
    (cm,) = (d for d in find(docs, "ConfigMap") if "gateway.yaml" in d.get("data", {}))
    text: str = cm["data"]["gateway.yaml"]
    return text


def pod_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    # Each variable gets a stand-in value: the point is that the Deployment provides it.
    return {e["name"]: f"stand-in-{e['name'].lower()}" for e in gateway_container(docs)["env"]}


def load(docs: list[dict[str, Any]]) -> Config:
    return parse(config_text(docs), source="ConfigMap gateway.yaml", env=pod_env(docs))


def mounts(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """mountPath -> the volume source (e.g. {"secret": {...}}) mounted there."""
    pod = one(docs, "Deployment", "zdr-gateway")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in gateway_container(docs)["volumeMounts"]}


def source_of(docs: list[dict[str, Any]], file: str) -> tuple[dict[str, Any], str]:
    """The volume a file path lives in, and the key inside that volume."""
    for path, volume in mounts(docs).items():
        if file.startswith(path.rstrip("/") + "/"):
            return volume, posixpath.relpath(file, path)
    raise AssertionError(f"{file} is on no mounted volume")


def test_config_parses_with_the_pods_environment(rendered: Rendered, overlay: str) -> None:
    config = load(rendered[overlay])
    assert config.upstreams[0].api_key == "stand-in-anthropic_api_key"


def test_config_path_is_the_mounted_config_map(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    args = gateway_container(docs)["args"]
    path = args[args.index("--config") + 1]
    volume = mounts(docs)[path]
    assert "configMap" in volume
    subpath = next(m["subPath"] for m in gateway_container(docs)["volumeMounts"]
                   if m["mountPath"] == path)  # fmt: skip
    assert subpath == "gateway.yaml"


def test_tls_files_come_from_the_cert_manager_secret(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    tls = load(docs).server.tls
    assert tls.enabled
    certificate = one(docs, "Certificate", "zdr-gateway")
    for file, key in ((tls.cert_file, "tls.crt"), (tls.key_file, "tls.key")):
        assert file is not None
        volume, inside = source_of(docs, file)
        assert volume["secret"]["secretName"] == certificate["spec"]["secretName"]
        assert inside == key


def test_signing_keys_come_from_a_secret_mount(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    keys = load(docs).auth.signing_keys
    assert keys
    for key in keys:
        volume, _ = source_of(docs, key.public_key_file)
        assert volume["secret"]["secretName"] == "zdr-gateway-signing-keys"


def test_ports_match_the_container(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    config = load(docs)
    ports = {p["name"]: p["containerPort"] for p in gateway_container(docs)["ports"]}
    assert ports == {"https": config.server.port, "admin": config.admin.port}
    assert config.admin.port == 9464


def test_single_limits_in_memory(rendered: Rendered) -> None:
    assert load(rendered["single"]).ratelimit.backend == "memory"


def test_ha_limits_in_the_overlays_redis(rendered: Rendered) -> None:
    docs = rendered["ha"]
    ratelimit = load(docs).ratelimit
    assert ratelimit.backend == "redis"
    assert ratelimit.redis_url is not None
    url = urlsplit(ratelimit.redis_url)
    service = one(docs, "Service", url.hostname or "")
    assert url.port in {p["port"] for p in service["spec"]["ports"]}
    assert url.password == "stand-in-redis_password"


def test_ha_config_differs_from_single_only_in_ratelimit() -> None:
    base = yaml.safe_load((KUSTOMIZE / "base" / "gateway.yaml").read_text(encoding="utf-8"))
    ha = yaml.safe_load((KUSTOMIZE / "overlays" / "ha" / "gateway.yaml").read_text("utf-8"))
    assert base.keys() == ha.keys()
    assert {k for k in base if base[k] != ha[k]} == {"ratelimit"}


def test_drift_is_caught(rendered: Rendered) -> None:
    """A key the schema does not know (e.g. renamed by a config change) fails the test."""
    docs = rendered["single"]
    text = config_text(docs).replace("ratelimit:\n", "ratelimit:\n  bakend: memory\n", 1)
    with pytest.raises(ConfigError, match=r"ratelimit\.bakend: unknown option"):
        parse(text, env=pod_env(docs))


def test_a_missing_secret_env_is_caught(rendered: Rendered) -> None:
    docs = rendered["ha"]
    env = pod_env(docs)
    del env["REDIS_PASSWORD"]
    with pytest.raises(ConfigError, match="REDIS_PASSWORD is not set"):
        parse(config_text(docs), env=env)


@pytest.mark.parametrize("path", ["base/gateway.yaml", "overlays/ha/gateway.yaml"])
def test_check_config_cli_accepts_the_shipped_files(rendered: Rendered, path: str) -> None:
    """What deploy/README.md tells operators to run before applying."""
    env = {**os.environ, **pod_env(rendered["ha"])}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(KUSTOMIZE / path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ": ok" in proc.stdout
