"""Stand-in servers on loopback: an aiohttp app served over real TLS on a free port."""

from __future__ import annotations

import ssl

from aiohttp import web

from gateway.serve import server


async def serve_tls(
    app: web.Application, cert_file: str, key_file: str, *, handler_cancellation: bool = False
) -> tuple[web.AppRunner, int]:
    """Serve `app` over TLS with this certificate on 127.0.0.1:0 → (runner, port).

    The caller cleans up with `await runner.cleanup()`.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=handler_cancellation)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    return runner, server.bound_port(site)
