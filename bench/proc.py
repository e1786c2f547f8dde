"""Processes under measurement: spawn, pin to a core, wait for a port, read /proc."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import IO

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def pin(pid: int, core: int | None) -> bool:
    """Pin a process (all its threads) to one core; False where that is not possible."""
    if core is None:
        return False
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(tid), {core})
    except OSError:
        return False
    return True


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    started: float
    log: IO[bytes]

    def log_tail(self, n: int = 2000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-n:]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """utime + stime of the process so far (all threads)."""
        with open(f"/proc/{self.pid}/stat") as f:
            stat = f.read()
        # The command name may hold spaces; fields resume after the closing paren.
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status_kib(self, key: str) -> int:
        """A `VmRSS`/`VmHWM`-style line from /proc/PID/status, in KiB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    def reset_peak_rss(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0), so a peak is measured from here."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()


def spawn(
    name: str, args: list[str], *, core: int | None, env: dict[str, str] | None = None
) -> Proc:
    # Logs (access lines, audit events) go to a real file, as they would to a container
    # runtime; a pipe nobody reads would stall the server once full.
    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed by Proc.stop)
    popen = subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    proc = Proc(name, popen, time.perf_counter(), log)
    pin(popen.pid, core)
    return proc


def wait_port(proc: Proc, port: int, timeout: float = 20.0) -> float:
    """Seconds from spawn until `port` accepts a TCP connection."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.popen.poll() is not None:
            tail = proc.log_tail()
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return time.perf_counter() - proc.started
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"{proc.name} did not listen on {port} within {timeout}s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
