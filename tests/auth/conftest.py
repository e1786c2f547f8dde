"""Auth fixtures: signing key pairs on disk and a real redis-server on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.auth.keyset import load_private_key, write_key_pair
from tests.auth.auth_helpers import Signer
from tests.support.redis_server import RedisServer


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    private_path, public_path = write_key_pair(tmp_path / "keys", "k1")
    return Signer("k1", private_path, public_path, load_private_key(private_path))


@pytest.fixture
def other_signer(tmp_path: Path) -> Signer:
    private_path, public_path = write_key_pair(tmp_path / "keys", "k2")
    return Signer("k2", private_path, public_path, load_private_key(private_path))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port, no persistence."""
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.close()
