"""Process hardening: applied in a child process and observed from outside via /proc."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.serve import harden

CHILD = """
import json, sys
from gateway.serve.harden import HardenSettings, apply, status
apply(HardenSettings(lock_memory={lock}))
print(json.dumps(status()), flush=True)
sys.stdin.readline()
"""


def spawn(lock: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD.format(lock=lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )


@pytest.mark.parametrize("lock", [False, pytest.param(True, id="lock_memory")])
def test_hardening_visible_in_proc(lock: bool) -> None:
    if lock and not harden.can_lock_memory():
        # Without CAP_IPC_LOCK and with a bounded memlock limit, start-up must refuse.
        with pytest.raises(harden.HardenError, match="memlock"):
            harden.lock_memory()
        return
    with spawn(lock) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        try:
            reported = json.loads(child.stdout.readline())
            limits = Path(f"/proc/{child.pid}/limits").read_text()
            status = Path(f"/proc/{child.pid}/status").read_text()
            owner = Path(f"/proc/{child.pid}/mem").stat().st_uid
        finally:
            child.stdin.close()
            child.wait(timeout=10)
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]
    # Non-dumpable: the kernel hands /proc/PID/mem to root, so the gateway's own user
    # cannot read its memory or ptrace it.
    assert owner == 0
    assert reported["core_dumps_disabled"] is True
    assert reported["dumpable"] is False
    assert reported["bytecode_writes_disabled"] is True
    assert reported["temporary_files_disabled"] is True
    assert reported["memory_locked"] is lock
    vm_lck = int(next(x for x in status.splitlines() if x.startswith("VmLck")).split()[1])
    assert (vm_lck > 0) is lock


def test_temporary_files_fail_loudly() -> None:
    code = (
        "import tempfile\nfrom gateway.serve.harden import HardenSettings, apply\n"
        "apply(HardenSettings())\n"
        "try:\n    tempfile.TemporaryFile()\nexcept OSError as e:\n    print(type(e).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert out.stdout.strip() == "FileNotFoundError"


def test_lock_memory_refused_with_an_explanation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harden, "_has_cap", lambda bit: False)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (8 * 1024 * 1024, 8 * 1024 * 1024))
    with pytest.raises(harden.HardenError) as info:
        harden.lock_memory()
    text = str(info.value)
    assert "8192 KiB" in text
    assert "IPC_LOCK" in text
    assert "ulimit -l unlimited" in text


def test_require_read_only_root_refuses_a_writable_root(monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "from gateway.serve.harden import HardenSettings, HardenError, apply\n"
        "try:\n    apply(HardenSettings(require_read_only_root=True))\n"
        "except HardenError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    if harden.read_only_root():  # pragma: no cover - a read-only CI root passes instead
        assert out.stdout == ""
    else:
        assert "readOnlyRootFilesystem" in out.stdout


def test_status_of_an_unhardened_process_says_so() -> None:
    s = harden.status()
    assert s["dumpable"] is True  # pytest itself is not hardened
    assert s["core_dumps_disabled"] is False or s["core_file_size_limit"] == {
        "soft": "0",
        "hard": "0",
    }
    assert isinstance(s["read_only_root"], bool)


def test_serve_refuses_to_start_when_a_protection_cannot_be_applied(tmp_path: Path) -> None:
    if harden.read_only_root():  # pragma: no cover - nothing to refuse on a read-only root
        return
    config = tmp_path / "gw.yaml"
    config.write_text(
        "server: {host: 127.0.0.1, port: 0, tls: {enabled: false}}\n"
        "admin: {host: 127.0.0.1, port: 0}\n"
        "upstreams: [{name: a, provider: anthropic, url: 'https://127.0.0.1:1', api_key: k}]\n"
        "harden: {require_read_only_root: true}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 2
    assert "readOnlyRootFilesystem" in done.stderr


def test_serve_explains_a_memlock_it_cannot_get(tmp_path: Path) -> None:
    """`harden.lock_memory` without CAP_IPC_LOCK and with a bounded memlock limit (a
    default container): start-up refuses, saying what to change."""
    config = tmp_path / "gw.yaml"
    config.write_text(
        "server: {host: 127.0.0.1, port: 0, tls: {enabled: false}}\n"
        "admin: {host: 127.0.0.1, port: 0}\n"
        "upstreams: [{name: a, provider: anthropic, url: 'https://127.0.0.1:1', api_key: k}]\n"
        "harden: {lock_memory: true}\n"
    )
    limit = 8 * 1024 * 1024

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (limit, limit))

    no_ipc_lock = ["setpriv", "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock"]
    done = subprocess.run(
        [*no_ipc_lock, sys.executable, "-m", "gateway", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parents[2],
        preexec_fn=bounded,
    )
    assert done.returncode == 2, done.stderr
    assert "harden.lock_memory needs an unlimited memlock limit, but it is 8192 KiB" in done.stderr
    assert "IPC_LOCK" in done.stderr
