"""The canary proof harness: one real `python -m gateway serve` under strace.

The gateway runs as a subprocess with its own empty TMPDIR and HOME, DEBUG
logging, an encrypted audit directory (keyed chain) and memory locking, in front of the stand-in
upstream (in this test process, so tests can steer it and see what reached it).
Authentication is on: the fixture makes its own signing key pair and issues the
harness key (`Proof.key`, generous limits) that every request sends unless a test
says otherwise; `Proof.issue` makes further keys (narrow scopes, tiny limits) and
the memory rate limiter enforces their claims.
`Proof.leaks(canary)` names every place a canary was found: the process's
stdout/stderr, the audit trail decrypted ("audit"), the raw bytes of each file in the
audit directory (its name: ciphertext must hold no field value), /metrics,
/zdr/posture, and any file under its TMPDIR or HOME. strace records every file the
process creates or opens for writing, so a test can prove nothing was written while
proxying.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import trustme
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from multidict import CIMultiDictProxy

from gateway.auth import tokens
from gateway.auth.keyset import load_private_key, write_key_pair
from gateway.auth.principal import Limits
from gateway.demo.stub_anthropic import Behaviour, StubUpstream
from gateway.serve import harden
from tests.conftest import wait_until_ready
from tests.support import audit as support_audit
from tests.support.eventually import eventually
from tests.support.ports import free_port
from tests.support.standins import serve_tls

AUDIT_KEY = "audit-chain-key-for-the-proof-suite"
KID = "proof-1"
# The harness key: any endpoint the policy allows, any model, limits no test reaches.
HARNESS_KEY_ID, TEAM, LIMITED_TEAM = "zdr-proof", "proof", "proof-limited"
GENEROUS = Limits(rpm=100_000, input_tpm=100_000_000, output_tpm=10_000_000, concurrency=64)
# Every syscall that can create, open for writing, rename, remove or link a file.
_CALLS: tuple[str, ...]
_CALLS = ("open", "openat", "creat", "mkdir", "mkdirat", "rename", "renameat", "renameat2")
_CALLS += ("unlink", "unlinkat", "truncate", "link", "linkat", "symlink", "symlinkat")
TRACED = ",".join(_CALLS)
_OPEN = re.compile(r"\b(open|openat)\(")
_OTHER = re.compile(r"\b(" + "|".join(c for c in _CALLS if not c.startswith("open")) + r")\(")
_WRITE_FLAGS = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND")


def canary(name: str) -> str:
    return f"CANARY-{name}-{uuid.uuid4().hex[:12]}"


@dataclass
class Proof:
    url: str
    admin_url: str
    ssl: ssl.SSLContext
    stub: StubUpstream
    proc: subprocess.Popen[bytes]  # strace
    pid: int  # the gateway itself
    root: Path
    log_path: Path
    audit_dir: Path
    strace_path: Path
    config_path: Path
    signing_key: Ed25519PrivateKey
    key: str = ""  # the harness key, sent by every request unless `headers` override it
    ready_mark: int = 0
    requests: int = 0
    # The `pool` upstream's first-priority target: an address nothing listens on.
    pool_down: str = ""

    def issue(self, key_id: str, team: str = TEAM, **claims: Any) -> str:
        """A gateway key signed with the harness's signing key, valid for an hour."""
        now = int(time.time())
        return tokens.issue(
            tokens.KeyClaims(
                key_id=key_id,
                team=team,
                issued_at=now - 60,
                not_before=now - 60,
                expires_at=claims.pop("expires_at", now + 3600),
                **claims,
            ),
            self.signing_key,
            KID,
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str | None] | None = None,
    ) -> tuple[int, bytes]:
        status, _, body = await self.send(method, path, json=json, data=data, headers=headers)
        return status, body

    async def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str | None] | None = None,
    ) -> tuple[int, CIMultiDictProxy[str], bytes]:
        """`call`, also returning the response headers. A header set to None is not sent."""
        merged = {"anthropic-version": "2023-06-01", "x-api-key": self.key, **(headers or {})}
        hdrs = {k: v for k, v in merged.items() if v is not None}
        kw: dict[str, Any] = {"json": json} if data is None else {"data": data}
        self.requests += 1
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.url + path, headers=hdrs, ssl=self.ssl, **kw) as resp,
        ):
            try:
                body = await resp.read()
            except aiohttp.ClientPayloadError:
                body = b"<truncated>"
            return resp.status, resp.headers, body

    async def audit_event(self, request_id: str) -> dict[str, Any]:
        """The audit event of one request (by the `x-gateway-request-id` it answered with)."""
        await self.settle()
        for event in support_audit.events(self.audit_dir):
            if event["request_id"] == request_id:
                return event
        raise AssertionError(f"no audit event for {request_id}")

    async def settle(self, timeout: float = 10) -> None:
        """Wait until every request made so far has its audit event (it ended)."""
        await eventually(lambda: self.audit_lines() >= self.requests, timeout=timeout)

    def audit_lines(self) -> int:
        """Records written so far (every line of a segment but its header)."""
        segments = self.audit_dir.glob("*.seg") if self.audit_dir.exists() else ()
        return sum(max(0, len(p.read_bytes().splitlines()) - 1) for p in segments)

    async def leaks(self, secret: str) -> list[str]:
        await self.settle()
        found = []
        if secret in self.log_path.read_text(errors="replace"):
            found.append("stdout/stderr")
        if any(secret in json.dumps(e) for e in support_audit.events(self.audit_dir)):
            found.append("audit")
        for f in sorted(self.audit_dir.iterdir()):  # SECURITY: ciphertext, nothing in clear
            if secret.encode() in f.read_bytes():
                found.append(f"audit file {f.name}")
        async with aiohttp.ClientSession() as http:
            for name in ("/metrics", "/zdr/posture"):
                async with http.get(self.admin_url + name) as resp:
                    if secret in await resp.text():
                        found.append(name)
        for sub in ("tmp", "home"):
            for f in (self.root / sub).rglob("*"):
                if f.is_file() and secret.encode() in f.read_bytes():
                    found.append(str(f))
        return found

    def reached_upstream(self, secret: str) -> bool:
        return any(secret.encode() in r.body or secret in repr(r) for r in self.stub.requests)

    def writes(self, since: int = 0) -> list[str]:
        """strace lines (after line `since`) that create or open a file for writing."""
        lines = self.strace_path.read_text(errors="replace").splitlines()[since:]
        out = []
        for line in lines:
            if "ENOENT" in line and ("O_CREAT" not in line):
                continue
            if _OPEN.search(line):
                if _WRITE_FLAGS.search(line):
                    out.append(line)
            elif _OTHER.search(line):
                out.append(line)
        return out


@pytest.fixture(scope="module")
def proof_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zdr-proof")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def proof(tls_ca: trustme.CA, proof_root: Path) -> AsyncIterator[Proof]:
    root = proof_root
    for sub in ("tmp", "home", "etc", "var"):
        (root / sub).mkdir()
    cert = tls_ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = root / "etc/tls.crt", root / "etc/tls.key", root / "etc/ca.crt"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(cert_file, append=True)
    cert.private_key_pem.write_to_path(key_file)
    tls_ca.cert_pem.write_to_path(ca_file)
    # The signing key pair, made here (in the fixture's root, not the gateway's TMPDIR or
    # HOME): the gateway gets the public key only.
    private_key_file, public_key_file = write_key_pair(root / "etc/keys", KID)

    stub = StubUpstream()
    runner, upstream_port = await serve_tls(
        stub.app, str(cert_file), str(key_file), handler_cancellation=True
    )

    port, admin_port = free_port(), free_port()
    audit_dir = root / "var/audit"
    stub_url = f"https://localhost:{upstream_port}"
    pool_down = f"127.0.0.1:{free_port()}"
    config = {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "tls": {"cert_file": str(cert_file), "key_file": str(key_file)},
            "max_body_bytes": 65536,
            "timeouts": {"body": 5},
            "shutdown_grace_seconds": 1,
        },
        "admin": {"host": "127.0.0.1", "port": admin_port},
        "upstreams": [
            {
                "name": "anthropic",
                "provider": "anthropic",
                "url": stub_url,
                "api_key": stub.api_key,
                "ca_file": str(ca_file),
                "timeouts": {"connect": 2, "first_byte": 1.5, "idle": 1.5, "total": 20},
            },
            # A pool under /pool: a target that refuses connections first, then the stub.
            {
                "name": "pool",
                "provider": "anthropic",
                "prefix": "/pool",
                "ca_file": str(ca_file),
                "timeouts": {"connect": 2, "first_byte": 1.5, "idle": 1.5, "total": 20},
                "targets": [
                    {"name": "down", "url": f"https://{pool_down}", "api_key": stub.api_key},
                    {"name": "live", "url": stub_url, "api_key": stub.api_key, "priority": 1},
                ],
            },
        ],
        "auth": {"signing_keys": [{"kid": KID, "public_key_file": str(public_key_file)}]},
        # Every request goes through the limiter; the limits come from each key's claims.
        "ratelimit": {"enabled": True, "backend": "memory"},
        # Exact model ids: a client-chosen name never becomes a label (see THREAT_MODEL.md).
        "metrics": {"teams": [TEAM, LIMITED_TEAM], "models": ["claude-sonnet-5-5"]},
        "logging": {"level": "debug"},
        "audit": {
            **support_audit.file_sink(audit_dir),
            "keys": [{"kid": support_audit.KID, "key": "${AUDIT_ENC_KEY}"}],
            "chain_key": "${AUDIT_KEY}",
        },
        # Locked where the environment allows it (CAP_IPC_LOCK / unlimited memlock).
        "harden": {"lock_memory": harden.can_lock_memory()},
    }
    config_path = root / "etc/gateway.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log_path, strace_path = root / "gateway.log", root / "strace.log"
    env = {
        **os.environ,
        "TMPDIR": str(root / "tmp"),
        "HOME": str(root / "home"),
        "AUDIT_KEY": AUDIT_KEY,
        "AUDIT_ENC_KEY": support_audit.KEY,
        # cwd is the proof directory (a stray relative write would land there, not in
        # the repository); the package is imported from the worktree.
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # `-B`: the interpreter caches the bytecode of `gateway/__init__.py` while importing
    # it, before any gateway code can switch that off; the image sets the same switch
    # (PYTHONDONTWRITEBYTECODE). Everything after that first import is the gateway's own
    # doing (it sets sys.dont_write_bytecode), and is what this harness checks.
    cmd = [sys.executable, "-B", "-m", "gateway", "serve", "--config", str(config_path)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["strace", "-f", "-qq", "-e", f"trace={TRACED}", "-o", str(strace_path), *cmd],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(root),
        )
    p = Proof(
        url=f"https://localhost:{port}",
        admin_url=f"http://127.0.0.1:{admin_port}",
        ssl=ssl.create_default_context(cafile=str(ca_file)),
        stub=stub,
        proc=proc,
        pid=0,
        root=root,
        log_path=log_path,
        audit_dir=audit_dir,
        strace_path=strace_path,
        config_path=config_path,
        signing_key=load_private_key(private_key_file),
        pool_down=pool_down,
    )
    p.key = p.issue(HARNESS_KEY_ID, limits=GENEROUS)
    try:
        await wait_until_ready(p.proc, p.admin_url, p.log_path.read_text, 30)
        p.pid = _gateway_pid(proc.pid)
        p.ready_mark = len(strace_path.read_text(errors="replace").splitlines())
        yield p
    finally:
        stub.behaviour.resume.set()
        if p.pid:
            os.kill(p.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        await runner.cleanup()


@pytest.fixture
def gw(proof: Proof) -> Proof:
    """The running gateway, with the stand-in upstream back to its default behaviour."""
    proof.stub.behaviour.resume.set()
    proof.stub.behaviour = Behaviour()
    return proof


def _gateway_pid(strace_pid: int) -> int:
    children = Path(f"/proc/{strace_pid}/task/{strace_pid}/children").read_text().split()
    assert children, "strace has no child"
    return int(children[0])
