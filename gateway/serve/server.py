"""`zdr-gateway serve`: the listeners, TLS, signals and graceful shutdown.

SIGTERM: readiness turns false at once, the listener stops accepting new
connections, and in-flight requests (streams included) may finish for up to
`server.shutdown_grace_seconds` before they are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.app import build_app
from gateway.config import Config
from gateway.errors import StartupError
from gateway.observe import logs
from gateway.observe.metrics import Metrics
from gateway.serve import fds, quiet
from gateway.serve.admin import build_admin_app
from gateway.serve.connections import GatedSite
from gateway.serve.tls import CertReloader, server_context
from gateway.state import AUTH, LOAD, RATELIMIT, READY, UPSTREAMS

log = logging.getLogger("gateway.serve.server")


@dataclass
class Running:
    """A started gateway: its bound ports and how to stop it."""

    port: int
    admin_port: int
    app: web.Application
    stop: Callable[[], Awaitable[None]]


async def start(
    config: Config,
    metrics: Metrics | None = None,
    config_path: str | None = None,
    reuse_port: bool = False,
) -> Running:
    """`reuse_port`: several worker processes bind the same ports (SO_REUSEPORT); the
    kernel spreads new connections across them."""
    metrics = metrics or Metrics()
    metrics.set_config_hash(config.digest())
    app = build_app(config, metrics, config_path)
    ready = app[READY]
    server = config.server
    runner = quiet.runner(
        app,
        handler_cancellation=True,  # a client that goes away cancels its upstream call
        shutdown_timeout=server.shutdown_grace_seconds,
    )
    ssl_ctx = None
    if server.tls.enabled:
        ssl_ctx = server_context(server.tls)
        # New handshakes pick up a rotated certificate; before setup(), which freezes the app.
        app.cleanup_ctx.append(CertReloader(ssl_ctx, server.tls, metrics).lifespan)
    await runner.setup()
    # SECURITY: the connection cap has to fit under the open-files limit, or a flood of
    # connections makes accept() fail for everyone (gateway/serve/fds.py).
    max_connections = fds.apply(
        server.limits.max_connections, sum(u.max_connections for u in config.upstreams)
    )
    site = GatedSite(
        runner,
        {"timeouts": server.timeouts, "max_connections": max_connections, "metrics": metrics},
        host=server.host,
        port=server.port,
        ssl_context=ssl_ctx,
        backlog=1024,
        reuse_port=reuse_port or None,
    )
    try:
        await _listen(site, "server", server.host, server.port)
    except StartupError:
        await runner.cleanup()
        raise
    admin = build_admin_app(
        metrics,
        ready,
        app.get(RATELIMIT),
        config=config,
        upstreams=app[UPSTREAMS],
        load=app[LOAD],
    )
    admin_runner = quiet.runner(admin)
    await admin_runner.setup()
    admin_site = web.TCPSite(
        admin_runner, config.admin.host, config.admin.port, reuse_port=reuse_port or None
    )
    try:
        await _listen(admin_site, "admin", config.admin.host, config.admin.port)
    except StartupError:
        await runner.cleanup()
        raise
    metrics.ready.set(1)

    async def stop() -> None:
        ready[0] = False
        metrics.ready.set(0)
        await runner.cleanup()  # stops listening, drains up to the grace period
        await admin_runner.cleanup()

    return Running(bound_port(site), bound_port(admin_site), app, stop)


async def _listen(site: web.TCPSite, section: str, host: str, port: int) -> None:
    try:
        await site.start()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise StartupError(f"{section}: cannot listen on {host}:{port}: {reason}") from None


def bound_port(site: web.TCPSite) -> int:
    """The port the OS gave a site started with port 0."""
    sockets: Any = getattr(site._server, "sockets", None)  # asyncio or uvloop server
    assert sockets
    return int(sockets[0].getsockname()[1])


async def serve(
    config: Config,
    config_path: str | None = None,
    reuse_port: bool = False,
    listening: Callable[[], None] | None = None,
) -> None:
    """`listening` is called once both ports are bound (a worker tells its supervisor)."""
    running = await start(config, config_path=config_path, reuse_port=reuse_port)
    if listening is not None:
        listening()
    log.info(
        "listening",
        extra={
            "port": running.port,
            "admin_port": running.admin_port,
            "tls": config.server.tls.enabled,
        },
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(logs.loop_exception_handler)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    # SIGHUP: re-read the auth section (keys, revocations, OIDC); a broken file is refused,
    # logged with its path, and the running config stays.
    loop.add_signal_handler(signal.SIGHUP, running.app[AUTH].reload)
    await stopping.wait()
    log.info("draining", extra={"grace_seconds": config.server.shutdown_grace_seconds})
    await running.stop()
    log.info("stopped")


def run(coro: Awaitable[None]) -> None:
    """Run on uvloop where it is installed (faster I/O), else the default loop."""
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(coro)  # type: ignore[arg-type]
