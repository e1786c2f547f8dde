"""`zdr-gateway keys …` as an operator runs it: a real subprocess, stdout vs stderr."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from gateway.auth.cli import parse_duration
from tests.auth.auth_helpers import write_config as write_auth_config

CLI = [sys.executable, "-m", "gateway", "keys"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, input=stdin, timeout=60)


def write_config(
    path: Path, keys_dir: Path, auth: dict[str, Any] | None = None, **extra: Any
) -> Path:
    key = {"kid": "2026-11", "public_key_file": str(keys_dir / "2026-11.pub.pem")}
    return write_auth_config(path, {"signing_keys": [key], **(auth or {})}, **extra)


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keys")
    r = run("init", "--out", str(out), "--kid", "2026-11")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    return out


@pytest.fixture(scope="module")
def key(keys_dir: Path) -> str:
    r = run(
        "issue",
        "--signing-key",
        str(keys_dir / "2026-11.key.pem"),
        "--id",
        "app-prod-1",
        "--team",
        "research",
        "--models",
        "claude-sonnet-*,claude-haiku-*",
        "--max-tokens",
        "4096",
        "--rpm",
        "60",
        "--input-tpm",
        "100000",
        "--output-tpm",
        "20000",
        "--concurrency",
        "4",
        "--expires-in",
        "30d",
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1  # the key and only the key
    assert lines[0].startswith("zdr_")
    assert "app-prod-1" in r.stderr
    return lines[0]


def test_init_files_and_refuses_to_overwrite(keys_dir: Path) -> None:
    assert stat.S_IMODE((keys_dir / "2026-11.key.pem").stat().st_mode) == 0o600
    assert (keys_dir / "2026-11.pub.pem").exists()
    r = run("init", "--out", str(keys_dir), "--kid", "2026-11")
    assert r.returncode == 1
    assert "already exists" in r.stderr


def test_inspect_reports_claims_and_acceptance_without_the_key(
    key: str, keys_dir: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "g.yaml", keys_dir)
    r = run("inspect", key, "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert key not in r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["key_id"] == "app-prod-1"
    assert report["team"] == "research"
    assert report["kid"] == "2026-11"
    assert report["models"] == ["claude-sonnet-*", "claude-haiku-*"]
    assert report["endpoints"] == ["messages", "count_tokens", "models"]
    assert report["limits"] == {
        "rpm": 60,
        "input_tpm": 100000,
        "output_tpm": 20000,
        "concurrency": 4,
    }
    assert report["accepted"] is True


def test_inspect_from_stdin_and_refusal_reasons(key: str, keys_dir: Path, tmp_path: Path) -> None:
    revoked = write_config(tmp_path / "r.yaml", keys_dir, {"revoked": ["app-prod-1"]})
    r = run("inspect", "-", "--config", str(revoked), stdin=key + "\n")
    assert r.returncode == 1
    assert json.loads(r.stdout)["refused_because"] == "revoked"
    retired = tmp_path / "retired.yaml"
    retired.write_text(revoked.read_text().replace("kid: 2026-11", "kid: 2027-01"))
    r = run("inspect", "-", "--config", str(retired), stdin=key)
    assert "unknown or retired" in json.loads(r.stdout)["refused_because"]
    r = run("inspect", "-", stdin=key)
    assert r.returncode == 0
    assert "not checked" in json.loads(r.stdout)["accepted"]


def test_inspect_garbage_does_not_echo_it() -> None:
    r = run("inspect", "zdr_CANARY.not.a.key")
    assert r.returncode == 1
    assert "CANARY" not in r.stdout + r.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--expires-in", "never", "--rpm", "5"], "never expires"),
        ([], "without any limit"),
        (["--rpm", "0"], "positive"),
        (["--rpm", "5", "--expires-in", "soon"], "--expires-in"),
        (["--rpm", "5", "--endpoints", "messages;rm -rf"], "invalid claims"),
    ],
)
def test_issue_refusals(keys_dir: Path, extra: list[str], message: str) -> None:
    r = run(
        "issue",
        "--signing-key",
        str(keys_dir / "2026-11.key.pem"),
        "--id",
        "x",
        "--team",
        "t",
        *extra,
    )
    assert r.returncode == 1
    assert r.stdout == ""
    assert message in r.stderr


def test_unbounded_when_told_explicitly(keys_dir: Path, tmp_path: Path) -> None:
    r = run(
        "issue",
        "--signing-key",
        str(keys_dir / "2026-11.key.pem"),
        "--id",
        "ops",
        "--team",
        "ops",
        "--expires-in",
        "never",
        "--endpoints",
        "*",
        "--unbounded",
    )
    assert r.returncode == 0, r.stderr
    cfg = write_config(tmp_path / "g.yaml", keys_dir)
    report = json.loads(run("inspect", r.stdout.strip(), "--config", str(cfg)).stdout)
    assert report["expires_at"] == "never"
    assert report["endpoints"] == "any"
    assert report["accepted"] is True


def test_revoke_without_redis_explains(keys_dir: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "g.yaml", keys_dir)
    r = run("revoke", "app-prod-1", "--config", str(cfg))
    assert r.returncode == 2
    assert "auth.revoked" in r.stderr


def test_revoke_appends_to_revoked_file(key: str, keys_dir: Path, tmp_path: Path) -> None:
    revoked = tmp_path / "revoked.txt"
    revoked.write_text("")
    cfg = write_config(tmp_path / "g.yaml", keys_dir, {"revoked_file": str(revoked)})
    assert run("revoke", "app-prod-1", "--config", str(cfg)).returncode == 0
    assert revoked.read_text() == "app-prod-1\n"
    r = run("inspect", "-", "--config", str(cfg), stdin=key)
    assert json.loads(r.stdout)["refused_because"] == "revoked"


def test_revoke_in_redis(key: str, keys_dir: Path, tmp_path: Path, redis_url: str) -> None:
    cfg = write_config(
        tmp_path / "g.yaml",
        keys_dir,
        ratelimit={"backend": "redis", "redis_url": redis_url, "failure_mode": "fail_open"},
    )
    assert json.loads(run("inspect", "-", "--config", str(cfg), stdin=key).stdout)["accepted"]
    r = run("revoke", "app-prod-1", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "within about a second" in r.stderr
    client = Redis.from_url(redis_url)
    try:
        assert client.sismember("zdr-gateway:revoked", "app-prod-1")
    finally:
        client.close()
    r = run("inspect", "-", "--config", str(cfg), stdin=key)
    assert json.loads(r.stdout)["refused_because"] == "revoked"


def test_revoke_refuses_a_key_instead_of_an_id(key: str, keys_dir: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "g.yaml", keys_dir)
    r = run("revoke", key, "--config", str(cfg))
    assert r.returncode == 1
    assert key not in r.stderr


def test_durations() -> None:
    assert parse_duration("90d") == 90 * 86400
    assert parse_duration("12h") == 12 * 3600
    assert parse_duration("2w") == 14 * 86400
    assert parse_duration("never") is None
    for bad in ("0d", "-1d", "1y", "", "1.5d"):
        with pytest.raises(ValueError, match="expires-in"):
            parse_duration(bad)


def test_inspect_with_redis_unreachable_says_so(key: str, keys_dir: Path, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "g.yaml",
        keys_dir,
        ratelimit={
            "backend": "redis",
            "redis_url": "redis://127.0.0.1:1/0",
            "failure_mode": "fail_open",
        },
    )
    r = run("inspect", "-", "--config", str(cfg), stdin=key)
    assert r.returncode == 1
    assert "cannot read revocations from Redis" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("revoke", "app-prod-1", "--config", str(cfg))
    assert r.returncode == 1
    assert "NOT revoked" in r.stderr
