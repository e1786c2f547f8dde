"""Process hardening at start-up (Linux), and its status read back from the kernel.

`apply()` runs before the gateway accepts a connection:

- core dumps off: RLIMIT_CORE = 0 and prctl(PR_SET_DUMPABLE, 0) — a crash
  cannot write request content to disk, and other processes of the same user
  cannot ptrace the gateway or read its /proc/PID/mem;
- optional mlockall (`harden.lock_memory`): content cannot be swapped to disk.
  Refused with an explanation when the memlock limit would make it fail;
- no byte-code files (sys.dont_write_bytecode, PYTHONDONTWRITEBYTECODE) and no
  temporary files (tempfile points at a directory that does not exist, so any
  attempt fails loudly instead of writing);
- umask 077: the one file the gateway may write (the audit file) is private.

`status()` reads what is actually in force from /proc/self and prctl, for
`/zdr/posture`; it reports facts, not intentions.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import sys
import tempfile
from typing import Any

from gateway.settings_base import Section

PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4
MCL_CURRENT, MCL_FUTURE = 1, 2
CAP_IPC_LOCK = 14
NO_TEMP_DIR = "/nonexistent/zdr-gateway-writes-no-temporary-files"


class HardenSettings(Section):
    # mlockall(MCL_CURRENT|MCL_FUTURE): needs CAP_IPC_LOCK or an unlimited memlock limit.
    lock_memory: bool = False
    # Refuse to start unless / is mounted read-only (what the Kubernetes manifests set).
    require_read_only_root: bool = False


class HardenError(Exception):
    """Start-up must stop: a requested protection cannot be put in force."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def apply(settings: HardenSettings) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc = _libc()
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise HardenError(f"prctl(PR_SET_DUMPABLE, 0) failed: {os.strerror(ctypes.get_errno())}")
    sys.dont_write_bytecode = True
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    tempfile.tempdir = NO_TEMP_DIR  # ZDR-OK: disables temp files
    os.environ["TMPDIR"] = NO_TEMP_DIR  # for any child or library that reads it directly
    os.umask(0o077)
    if settings.require_read_only_root and not read_only_root():
        raise HardenError(
            "harden.require_read_only_root is set but / is writable: run the container "
            "with readOnlyRootFilesystem: true (docker: --read-only)"
        )
    if settings.lock_memory:
        lock_memory(libc)


def can_lock_memory() -> bool:
    """Whether mlockall(MCL_FUTURE) is safe here: CAP_IPC_LOCK or an unlimited memlock."""
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return soft == resource.RLIM_INFINITY or _has_cap(CAP_IPC_LOCK)


def lock_memory(libc: ctypes.CDLL | None = None) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if not can_lock_memory():
        raise HardenError(
            f"harden.lock_memory needs an unlimited memlock limit, but it is {_fmt(soft)}: "
            "MCL_FUTURE would make allocations fail once the limit is reached. Run with "
            "`ulimit -l unlimited` (systemd: LimitMEMLOCK=infinity) or grant CAP_IPC_LOCK "
            "(Kubernetes: securityContext.capabilities.add: [IPC_LOCK]); or set "
            "harden.lock_memory: false"
        )
    libc = libc or _libc()
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        err = ctypes.get_errno()
        raise HardenError(
            f"mlockall failed ({os.strerror(err)}); memlock limit {_fmt(soft)}. Grant "
            "CAP_IPC_LOCK or raise the memlock limit, or set harden.lock_memory: false"
        )


def _fmt(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else f"{limit // 1024} KiB"


def _proc_status() -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key] = value.strip()
    except OSError:
        pass
    return out


def _has_cap(bit: int) -> bool:
    caps = _proc_status().get("CapEff")
    return caps is not None and bool(int(caps, 16) & (1 << bit))


def core_limit() -> tuple[str, str] | None:
    """(soft, hard) of "Max core file size" as /proc/self/limits shows them."""
    try:
        with open("/proc/self/limits", encoding="ascii") as f:
            for line in f:
                if line.startswith("Max core file size"):
                    parts = line.split()
                    return parts[4], parts[5]
    except OSError:
        pass
    return None


def read_only_root() -> bool:
    return bool(os.statvfs("/").f_flag & os.ST_RDONLY)


def status() -> dict[str, Any]:
    limit = core_limit()
    vm_lck = _proc_status().get("VmLck", "0 kB").split()[0]
    dumpable = _libc().prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)
    no_temp = tempfile.gettempdir() == NO_TEMP_DIR  # ZDR-OK: a check, nothing written
    return {
        "core_dumps_disabled": limit == ("0", "0") and dumpable == 0,
        "core_file_size_limit": {"soft": limit[0], "hard": limit[1]} if limit else None,
        "dumpable": bool(dumpable),
        "memory_locked": int(vm_lck) > 0,
        "memory_lock_possible": can_lock_memory(),
        "locked_kib": int(vm_lck),
        "bytecode_writes_disabled": sys.dont_write_bytecode,
        "temporary_files_disabled": no_temp,
        "read_only_root": read_only_root(),
    }
