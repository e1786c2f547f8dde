"""TLS contexts for the listener (server, optional mTLS) and for upstreams (client)."""

from __future__ import annotations

import ssl

from gateway.config import TLSSettings


def server_context(settings: TLSSettings) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if settings.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    assert settings.cert_file is not None
    assert settings.key_file is not None
    ctx.load_cert_chain(settings.cert_file, settings.key_file)
    if settings.client_ca_file:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=settings.client_ca_file)
    return ctx


def client_context(ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
