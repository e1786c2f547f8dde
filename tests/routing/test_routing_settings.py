"""Pool config: one form or the other, validated at load, errors by path, keys never echoed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gateway.config import ConfigError, parse

U0 = "upstreams[0]."
ONE: dict[str, Any] = {"targets": [{"name": "a", "url": "https://a", "api_key": "k"}]}
U0T0 = "upstreams[0].targets[0]."
SERVER = {"port": 8443, "tls": {"cert_file": "/etc/tls.crt", "key_file": "/etc/tls.key"}}


def cfg(**upstream: Any) -> str:
    up = {"name": "anthropic", "provider": "anthropic", **upstream}
    return yaml.safe_dump({"server": SERVER, "upstreams": [up]})


def target(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "url": f"https://{name}.example", "api_key": f"sk-{name}-SECRET", **kw}


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse(text, env={})
    assert "SECRET" not in str(info.value)
    return info.value.problems


def test_single_url_is_a_pool_of_one_named_after_the_upstream() -> None:
    c = parse(cfg(url="https://api.anthropic.com", api_key="sk-1", ca_file="/ca.pem"), env={})
    (only,) = c.upstreams[0].pool()
    assert (only.name, only.url, only.api_key, only.ca_file) == (
        "anthropic",
        "https://api.anthropic.com",
        "sk-1",
        "/ca.pem",
    )
    assert (only.weight, only.priority, only.labels) == (1, 0, {})


def test_targets_inherit_the_upstream_ca_file_unless_they_set_one() -> None:
    c = parse(cfg(ca_file="/up.pem", targets=[target("a"), target("b", ca_file="/b.pem")]), env={})
    assert [t.ca_file for t in c.upstreams[0].pool()] == ["/up.pem", "/b.pem"]


@pytest.mark.parametrize(
    ("upstream", "path", "message"),
    [
        ({"url": "https://x", "api_key": "k", "targets": [target("a")]}, "upstreams[0]", "either"),
        ({}, "upstreams[0]", "url and api_key are required"),
        ({"targets": [target("a"), target("a")]}, "upstreams[0]", "unique"),
        ({"targets": [target("A")]}, U0T0 + "name", "pattern"),
        ({"targets": [target("a", weight=0)]}, U0T0 + "weight", "greater"),
        ({"targets": [target("a", url="ftp://x")]}, U0T0 + "url", "http(s)"),
        ({"targets": [target("a", api_key="sk-SECRET\n")]}, U0T0 + "api_key", "one line"),
        ({"targets": [target("a", labels={"re gion": "eu"})]}, U0T0 + "labels", "label"),
        ({**ONE, "retry": {"statuses": [200]}}, U0 + "retry.statuses", "400-599"),
        ({**ONE, "retry": {"max_attempts": 0}}, U0 + "retry.max_attempts", "greater"),
        (
            {**ONE, "teams": {"t": {"labels": {"region": "e u"}}}},
            "upstreams[0].teams.t.labels",
            "label",
        ),
        ({**ONE, "breaker": {"cooldown": 1}}, U0 + "breaker.cooldown", "unknown"),
    ],
)  # fmt: skip
def test_bad_pool_config_named_by_path(upstream: dict[str, Any], path: str, message: str) -> None:
    found = problems(cfg(**upstream))
    assert any(p == path and message in m for p, m in found), found


def test_grant_upstream_labels_validated() -> None:
    text = yaml.safe_dump(
        {
            "server": SERVER,
            "upstreams": [{"name": "a", "provider": "anthropic", "targets": [target("a")]}],
            "auth": {
                "mtls": [{"id": "m", "team": "t", "subject_cn": "x", "upstream_labels": {"r": ""}}]
            },
        }
    )
    assert problems(text)[0][0] == "auth.mtls[0].upstream_labels"


def test_serve_names_a_target_ca_file_it_cannot_read(tmp_path: Any) -> None:
    from gateway.cli import _check_tls_files

    bad = target("eu", ca_file=str(tmp_path / "missing-ca.pem"))
    up = {"name": "anthropic", "provider": "anthropic", "targets": [target("us"), bad]}
    text = yaml.safe_dump({"server": {"tls": {"enabled": False}}, "upstreams": [up]})
    config = parse(text, env={})
    with pytest.raises(ConfigError) as info:
        _check_tls_files(config)
    assert "upstreams[0].targets[1].ca_file" in str(info.value)


def test_check_config_names_the_targets(tmp_path: Any) -> None:
    import subprocess
    import sys

    path = tmp_path / "pool.yaml"
    path.write_text(cfg(targets=[target("us"), target("eu")]))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "anthropic (anthropic; targets us eu)" in done.stdout
    assert "SECRET" not in done.stdout + done.stderr
    assert "example" not in done.stdout
