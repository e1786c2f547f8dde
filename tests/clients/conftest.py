"""Real clients installed by `make clients` (tests/clients/package.json pins them):
Claude Code and the official TypeScript SDK, run through the gateway against the
stand-in upstream.

- `claude(args, env)`: runs `claude -p ...` with HOME, CLAUDE_CONFIG_DIR and every
  cache under a temp dir (never the user's config), autoupdate and the update check
  off → (exit code, stdout, stderr).
- `cc_gateway`: a gateway with auth on (a signing key of the test's own) in front of
  the stand-in; `cc_gateway.key` is a gateway key for it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import tokens
from gateway.auth.keyset import load_private_key, write_key_pair
from tests.conftest import Gateway, StartGateway
from tests.support import audit as support_audit

HERE = Path(__file__).resolve().parent
# Installed third-party code (`make clients`), not tests of this project.
collect_ignore = ["py-sdk1", "node_modules"]
BIN = HERE / "node_modules" / ".bin"
CLAUDE = BIN / "claude"

if not CLAUDE.exists():  # a clear failure, not a skip: `make test` installs them
    raise RuntimeError("tests/clients needs the pinned clients: run `make clients`")


@dataclass
class CCGateway:
    gw: Gateway
    key: str


def issue_key(tmp: Path, **claims: Any) -> tuple[str, str]:
    """A gateway key for the tests' own signing key: (key, public key file)."""
    key, _, public = _issue(tmp, **claims)
    return key, public


def _issue(tmp: Path, **claims: Any) -> tuple[str, str, str]:
    private_path, public_path = write_key_pair(tmp / "keys", "cc")
    now = int(time.time())
    fields: dict[str, Any] = {
        "key_id": "claude-code-test",
        "team": "dev",
        "issued_at": now - 60,
        "not_before": now - 60,
        "expires_at": now + 3600,
        "endpoints": None,
        "models": None,
        "max_tokens": None,
        **claims,
    }
    key = tokens.issue(tokens.KeyClaims(**fields), load_private_key(private_path), "cc")
    return key, str(private_path), str(public_path)


@pytest.fixture
async def cc_gateway(
    start_gateway: StartGateway, config_dict: dict[str, Any], tmp_path: Path
) -> CCGateway:
    key, _, public = _issue(tmp_path)
    config_dict["auth"] = {"signing_keys": [{"kid": "cc", "public_key_file": public}]}
    config_dict["audit"] = support_audit.file_sink(tmp_path / "audit")
    config_dict["metrics"] = {"teams": ["dev"]}
    return CCGateway(await start_gateway(config_dict), key)


Claude = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def claude(tmp_path: Path) -> Claude:
    home = tmp_path / "home"
    work = tmp_path / "work"
    for d in (home, work, home / ".claude"):
        d.mkdir(parents=True, exist_ok=True)

    async def run(
        gw: Gateway, args: list[str], env: dict[str, str], timeout: float = 90
    ) -> tuple[int, str, str]:
        full = {
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),
            "USERPROFILE": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local/share"),
            "XDG_STATE_HOME": str(home / ".local/state"),
            "CLAUDE_CONFIG_DIR": str(home / ".claude"),
            "TMPDIR": str(tmp_path),
            "ANTHROPIC_BASE_URL": gw.url,
            # The gateway's test certificate (real TLS, trustme's CA).
            "NODE_EXTRA_CA_CERTS": gw.ca_path,
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "TERM": "dumb",
            "NO_COLOR": "1",
            **env,
        }
        proc = await asyncio.create_subprocess_exec(
            str(CLAUDE),
            *args,
            cwd=work,
            env=full,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")

    run.work = work  # type: ignore[attr-defined]
    return run


def node() -> str:
    found = shutil.which("node")
    assert found, "node 20 is needed for tests/clients"
    return found
