"""Reload without restart: revocations and key rotation take effect; a broken config is refused."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import runtime as runtime_mod
from gateway.auth.runtime import AuthRuntime
from gateway.auth.tokens import Rejected
from gateway.config import load
from gateway.observe.metrics import Metrics
from tests.auth.auth_helpers import Signer, write_config
from tests.support.eventually import eventually


def keys_of(*signers: Signer) -> list[dict[str, str]]:
    return [{"kid": s.kid, "public_key_file": str(s.public_path)} for s in signers]


@pytest.fixture
def cfg_path(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "gateway.yaml"
    write_config(path, {"signing_keys": keys_of(signer)})
    return path


def runtime(path: Path) -> AuthRuntime:
    return AuthRuntime(load(path), Metrics(), str(path))


async def rejected(key: str, *runtimes: AuthRuntime) -> bool:
    """Whether each of these runtimes rejects `key` now."""
    for rt in runtimes:
        try:
            await rt.current.authenticate(key)
        except Rejected:
            continue
        return False
    return True


async def test_revocation_by_reload(cfg_path: Path, signer: Signer) -> None:
    rt = runtime(cfg_path)
    key = signer.issue_live()
    assert (await rt.current.authenticate(key)).key_id == "app-1"
    write_config(cfg_path, {"signing_keys": keys_of(signer), "revoked": ["app-1"]})
    assert rt.reload() == []
    with pytest.raises(Rejected, match="revoked"):
        await rt.current.authenticate(key)


async def test_rotation_by_reload(cfg_path: Path, signer: Signer, other_signer: Signer) -> None:
    rt = runtime(cfg_path)
    old, new = signer.issue_live(), other_signer.issue_live()
    write_config(cfg_path, {"signing_keys": keys_of(signer, other_signer)})
    assert rt.reload() == []
    assert (await rt.current.authenticate(new)).key_id == "app-1"
    write_config(cfg_path, {"signing_keys": keys_of(other_signer)})  # retire the old key
    assert rt.reload() == []
    with pytest.raises(Rejected, match="unknown_kid"):
        await rt.current.authenticate(old)
    assert (await rt.current.authenticate(new)).key_id == "app-1"


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        ({"signing_keys": [{"kid": "k1", "public_key_file": "/nonexistent.pem"}]}, "cannot read"),
        ({"revoked": "app-1"}, "auth.revoked"),
        ({"bogus": 1}, "auth.bogus: unknown option"),
        ({"revoked_file": "/nonexistent/revoked.txt"}, "cannot read revoked key ids"),
        ({"enabled": False}, "auth.enabled: changing it needs a restart"),
    ],
    ids=["missing key file", "wrong type", "unknown option", "missing revoked_file", "disable"],
)
async def test_broken_config_keeps_the_old_one_and_says_why(
    cfg_path: Path,
    signer: Signer,
    auth: dict[str, Any],
    says: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt = runtime(cfg_path)
    before = rt.current
    write_config(cfg_path, auth)
    with caplog.at_level(logging.ERROR):
        problems = rt.reload()
    assert any(says in p for p in problems), problems
    assert rt.current is before
    assert (await rt.current.authenticate(signer.issue_live())).key_id == "app-1"
    assert "previous config kept" in caplog.text


async def test_not_yaml_keeps_the_old_config(cfg_path: Path) -> None:
    rt = runtime(cfg_path)
    before = rt.current
    cfg_path.write_text("auth: [unclosed\n")
    assert any("not valid YAML" in p for p in rt.reload())
    assert rt.current is before


async def test_config_file_change_is_picked_up_while_running(
    cfg_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_mod, "WATCH_SECONDS", 0.05)
    rt = runtime(cfg_path)
    key = signer.issue_live()
    run = rt.run()
    await run.__anext__()
    try:
        write_config(cfg_path, {"signing_keys": keys_of(signer), "revoked": ["app-1"]})
        os.utime(cfg_path, ns=(1, 1))
        await eventually(lambda: rejected(key, rt), timeout=2, what="the config change")
    finally:
        with pytest.raises(StopAsyncIteration):
            await run.__anext__()


async def test_redis_revocation_reaches_a_running_replica(
    tmp_path: Path, signer: Signer, redis_url: str
) -> None:
    path = tmp_path / "gateway.yaml"
    write_config(
        path,
        {"signing_keys": keys_of(signer)},
        ratelimit={"backend": "redis", "redis_url": redis_url, "failure_mode": "fail_open"},
    )
    replicas = [runtime(path), runtime(path)]
    runs = [r.run() for r in replicas]
    for run in runs:
        await run.__anext__()
    try:
        key = signer.issue_live()
        for r in replicas:
            assert (await r.current.authenticate(key)).key_id == "app-1"
        from redis.asyncio import Redis

        admin = Redis.from_url(redis_url)
        await admin.sadd("zdr-gateway:revoked", "app-1")
        await admin.aclose()
        # The documented bound: within about a second.
        await eventually(lambda: rejected(key, *replicas), timeout=1.2, what="the revocation")
        for r in replicas:
            with pytest.raises(Rejected, match="revoked"):
                await r.current.authenticate(key)
    finally:
        for run in runs:
            with pytest.raises(StopAsyncIteration):
                await run.__anext__()


async def test_jwks_refreshed_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    fetches = 0

    async def jwks(request: web.Request) -> web.Response:
        nonlocal fetches
        fetches += 1
        return web.json_response({"keys": []})

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    idp = TestServer(app, host="127.0.0.1")
    await idp.start_server()
    oidc = {
        "name": "corp",
        "issuer": "https://login.corp.example/",
        "audience": "zdr",
        "jwks_url": str(idp.make_url("/jwks")),
        "algorithms": ["RS256"],
        "refresh_interval_seconds": 1,
        "min_refresh_interval_seconds": 0,
        "grants": [{"claim": "scope", "value": "llm.use", "team": "apps"}],
    }
    path = tmp_path / "gateway.yaml"
    write_config(path, {"oidc": [oidc]})
    monkeypatch.setattr(runtime_mod, "JWKS_TICK_SECONDS", 0.05)
    rt = runtime(path)
    try:
        async with asyncio.timeout(10):
            async for _ in rt.run():
                assert fetches == 1  # warmed at start
                # No token is sent: the refresher alone fetches again.
                await eventually(lambda: fetches >= 2, timeout=10, interval=0.05)
    finally:
        await idp.close()
