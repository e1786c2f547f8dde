"""The Authenticator's cache of verified gateway keys: expiry and revocation still hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth import authenticator as auth_mod
from gateway.auth import tokens
from gateway.auth.authenticator import Authenticator
from gateway.auth.mtls import MTLSMap
from gateway.auth.revocation import Revocations
from gateway.auth.settings import AuthSettings
from gateway.auth.tokens import PREFIX, Rejected
from tests.auth.auth_helpers import NOW, Signer


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def make(signer: Signer, clock: Clock, revoked: list[str] | None = None) -> Authenticator:
    return Authenticator(
        AuthSettings(),
        signer.keyset(),
        Revocations(revoked or [], None, None),
        {},
        MTLSMap([]),
        clock,
    )


async def test_second_use_skips_the_signature_check(
    signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    auth = make(signer, clock)
    key = signer.issue()
    calls = 0
    real = tokens.verify

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(tokens, "verify", counting)
    first = await auth.authenticate(key)
    second = await auth.authenticate(key)
    assert first == second
    assert first.key_id == "app-1"
    assert calls == 1


async def test_cached_key_still_expires(signer: Signer) -> None:
    clock = Clock()
    auth = make(signer, clock)
    key = signer.issue(expires_at=NOW + 100)
    await auth.authenticate(key)
    clock.now = NOW + 100 + auth.settings.leeway_seconds + 1
    with pytest.raises(Rejected, match="expired"):
        await auth.authenticate(key)


async def test_cached_key_still_revocable(signer: Signer) -> None:
    clock = Clock()
    revoked = Revocations([], None, None)
    auth = Authenticator(AuthSettings(), signer.keyset(), revoked, {}, MTLSMap([]), clock)
    key = signer.issue()
    await auth.authenticate(key)
    auth.revoked = Revocations(["app-1"], None, None)
    with pytest.raises(Rejected, match="revoked"):
        await auth.authenticate(key)


async def test_failures_are_not_cached_and_the_cache_is_bounded(
    signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth_mod, "VERIFIED_CACHE_SIZE", 3)
    auth = make(signer, Clock())
    for bad in (PREFIX + "x.y.z", signer.issue()[:-4] + "AAAA"):
        with pytest.raises(Rejected):
            await auth.authenticate(bad)
    assert auth._verified == {}
    for i in range(10):
        await auth.authenticate(signer.issue(key_id=f"app-{i}"))
    assert len(auth._verified) == 3


def test_stage_entry_point_rechecks_revocation_and_expiry_on_every_hit(
    signer: Signer, tmp_path: Path
) -> None:
    # The auth stage calls gateway_key directly (no coroutine): a cached key must still
    # meet a revocation written to revoked_file, and its expiry, on the next request.
    clock = Clock()
    ticks = [0.0]
    path = tmp_path / "revoked.txt"
    path.write_text("")
    revoked = Revocations([], str(path), None, clock=lambda: ticks[0])
    auth = Authenticator(AuthSettings(), signer.keyset(), revoked, {}, MTLSMap([]), clock)
    key = signer.issue(expires_at=NOW + 100)
    assert auth.gateway_key(key) is auth.gateway_key(key)  # verified once, then cached
    path.write_text("app-1\n")
    ticks[0] = 5.0  # the file is looked at again at most once a second
    with pytest.raises(Rejected, match="revoked"):
        auth.gateway_key(key)
    path.write_text("")
    ticks[0] = 10.0
    assert auth.gateway_key(key).key_id == "app-1"
    clock.now = NOW + 100 + auth.settings.leeway_seconds + 1
    with pytest.raises(Rejected, match="expired"):
        auth.gateway_key(key)
    assert key not in auth._verified
