"""The demo's key is a real scoped key, and the demo shows it being enforced."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.auth import tokens
from gateway.auth.keyset import KeySet
from gateway.demo.key import KID, issue_demo_key


def test_demo_key_verifies_with_its_public_key_only() -> None:
    demo = issue_demo_key()
    public = serialization.load_pem_public_key(demo.public_pem)
    assert isinstance(public, Ed25519PublicKey)
    p = tokens.verify(demo.key, KeySet({KID: public}), time.time(), set())
    assert (p.key_id, p.team, p.max_tokens) == ("demo-key-1", "demo", 1024)
    assert p.models == ("claude-sonnet-*",)
    other = serialization.load_pem_public_key(issue_demo_key().public_pem)
    assert isinstance(other, Ed25519PublicKey)
    with pytest.raises(tokens.Rejected, match="bad_signature"):
        tokens.verify(demo.key, KeySet({KID: other}), time.time(), set())


def test_demo_uses_and_enforces_the_scoped_key() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "demo"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "scoped key issued   zdr_" in done.stdout
    assert "403 permission_error" in done.stdout
    assert 'team="demo"' in done.stdout
