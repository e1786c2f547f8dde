"""The encrypted audit directory in tests: a fixed test key, a config for it, its events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.audit.crypto import AuditKey, Keyring, parse_key
from gateway.audit.verifydir import Result, verify_dir

KID = "test-2026-12"
KEY = "q8OQhtN8nq1dUdMmgF8zmS2kD+4rUO6fAqlXh8y0Ldc="  # a test key: never a real one
OLD_KID, OLD_KEY = "test-2026-06", "9Rr1fWkQnCDN1e7mK0o6cUBv8N3m2PpU6dG1cZ9x3sA="


def keyring(*pairs: tuple[str, str]) -> Keyring:
    return Keyring(AuditKey.of(kid, parse_key(key)) for kid, key in pairs or ((KID, KEY),))


def file_sink(directory: Path, **extra: Any) -> dict[str, Any]:
    """An `audit:` config section for an encrypted directory under the test key."""
    return {"sink": "file", "dir": str(directory), "keys": [{"kid": KID, "key": KEY}], **extra}


def read(directory: Path, keys: Keyring | None = None, chain_key: bytes | None = None) -> tuple[
    Result, list[dict[str, Any]]
]:  # fmt: skip
    """Verify `directory` and return the result with every event that opened, in order."""
    events: list[dict[str, Any]] = []
    result = verify_dir(
        str(directory), keys or keyring(), chain_key, lambda p: events.append(json.loads(p))
    )
    return result, events


def events(directory: Path) -> list[dict[str, Any]]:
    return read(directory)[1] if directory.exists() else []


def text(directory: Path) -> str:
    """The decrypted trail as JSON lines, for tests that search it for a value."""
    return "".join(json.dumps(e, sort_keys=True) + "\n" for e in events(directory))
