"""`zdr-gateway serve --workers N`: N worker processes sharing the ports (SO_REUSEPORT).

The parent only supervises: it starts the workers, restarts one that dies,
and on SIGTERM/SIGINT passes the signal on and waits for every worker to
drain (`server.shutdown_grace_seconds`). Each worker is a complete gateway;
the kernel spreads new connections across them.

Limits stay exact because config validation allows N > 1 only with the Redis
backend. Metrics are aggregated across workers through prometheus_client's
multiprocess mode (a private directory per supervisor), so any worker's
/metrics answers for all of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from types import FrameType

from gateway.config import Config

log = logging.getLogger("gateway.serve.workers")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SHM = "/dev/shm"  # noqa: S108 (memory-backed; see supervise)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def supervise(config: Config, config_path: str | None = None) -> int:
    n = config.server.workers
    # The workers' shared metric files hold sample values only (names, bounded labels,
    # numbers), and in memory: /dev/shm, so that "nothing on disk" and a read-only root
    # filesystem both still hold. Without it, refuse rather than write to disk.
    if not os.access(SHM, os.W_OK):
        log.error("--workers needs a writable /dev/shm", extra={"workers": n})
        print(
            f"zdr-gateway: --workers {n} needs a writable {SHM} for the workers' shared "
            "metrics (Kubernetes: an emptyDir with medium: Memory mounted there)",
            file=sys.stderr,
        )
        return 2
    metrics_dir = tempfile.mkdtemp(prefix="zdr-gateway-metrics-", dir=SHM)  # ZDR-OK: in memory
    # Read by prometheus_client when a worker imports it (workers are spawned, not forked).
    os.environ[MULTIPROC_ENV] = metrics_dir
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    procs: list[BaseProcess] = []
    # Set by a worker once it listens: one that exits before that is failing at start.
    listening: list[EventType] = []
    status = 0
    try:
        for _ in range(n):
            listening.append(ctx.Event())
            procs.append(_spawn(ctx, _own_stream(config, len(procs)), config_path, listening[-1]))
        log.info("workers started", extra={"workers": n})
        while not stopping:
            time.sleep(0.2)
            for i, proc in enumerate(procs):
                if proc.is_alive() or stopping:
                    continue
                _mark_dead(proc)
                early = not listening[i].is_set()
                if early and (proc.exitcode or 0) > 0:
                    # Failing at start (port taken, bad certificate): restarting would spin.
                    # A worker killed by a signal (OOM killer) is restarted whenever it dies.
                    log.error("worker failed at start", extra={"exitcode": proc.exitcode})
                    stopping, status = True, 1
                    break
                log.error("worker exited; restarting", extra={"exitcode": proc.exitcode})
                listening[i] = ctx.Event()
                procs[i] = _spawn(ctx, _own_stream(config, i), config_path, listening[i])
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + config.server.shutdown_grace_seconds + 5
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        log.info("workers stopped")
        return status
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _own_stream(config: Config, slot: int) -> Config:
    """Each worker writes its own audit stream (`<stream>-w<slot>`): a segment file has
    one writer, and a restarted worker continues its slot's segments."""
    audit = config.audit.model_copy(update={"stream": f"{config.audit.stream}-w{slot}"})
    return config.model_copy(update={"audit": audit})


def _spawn(
    ctx: multiprocessing.context.SpawnContext,
    config: Config,
    config_path: str | None,
    listening: EventType,
) -> BaseProcess:
    args = (config, config_path, os.getpid(), listening)
    proc = ctx.Process(target=_worker, args=args, daemon=False)
    proc.start()
    return proc


def _worker(config: Config, config_path: str | None, supervisor: int, listening: EventType) -> None:
    from gateway.observe import logs
    from gateway.serve import harden, server

    _die_with(supervisor)
    logs.configure(config.logging.level)
    # A spawned worker is a new exec: "not dumpable" and the rest must be set again.
    harden.apply(config.harden)
    coro = server.serve(config, config_path=config_path, reuse_port=True, listening=listening.set)
    server.run(coro)


def _die_with(supervisor: int) -> None:
    """A worker must not outlive its supervisor (killed with SIGKILL, it cannot pass
    SIGTERM on): orphaned workers would keep serving the port unsupervised."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before prctl took effect
        os._exit(1)


def _mark_dead(proc: BaseProcess) -> None:
    if proc.pid is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(proc.pid)  # type: ignore[no-untyped-call]
