"""gateway/serve/tls.py with real certificates (trustme) over real sockets."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import os
import ssl
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpServer

from gateway.config import TLSSettings
from gateway.observe import logs
from gateway.observe.metrics import Metrics
from gateway.serve.tls import CertReloader, TLSFileError, client_context, server_context
from tests.support.eventually import eventually

Serve = Callable[[ssl.SSLContext], Awaitable[TestServer]]
MTLS = tuple[TestServer, trustme.CA]  # the server, and the CA its clients' certificates are from
Upstream = tuple[TestServer, Path]  # the server, and the CA bundle that trusts it
FAST = 0.05  # reload interval in these tests
# A refused handshake surfaces as an alert (SSLError) or as a reset, depending on timing.
REFUSED = (ssl.SSLError, ConnectionError)
HTTP_REFUSED = (aiohttp.ClientError, *REFUSED)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def hits() -> list[str]:
    return []


@pytest.fixture
def serve(aiohttp_server: AiohttpServer, hits: list[str]) -> Serve:
    async def ok(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="ok")

    async def go(ctx: ssl.SSLContext) -> TestServer:
        app = web.Application()
        app.router.add_get("/", ok)
        server: TestServer = await aiohttp_server(app, ssl=ctx)
        return server

    return go


def write_pair(leaf: trustme.LeafCert, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "tls.crt", directory / "tls.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return cert, key


def settings_for(cert: Path, key: Path, **kw: object) -> TLSSettings:
    return TLSSettings(cert_file=str(cert), key_file=str(key), **kw)  # type: ignore[arg-type]


def trusting(ca: trustme.CA, client: trustme.LeafCert | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if client is not None:
        client.configure_cert(ctx)
    return ctx


def der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


async def served_cert(server: TestServer, ctx: ssl.SSLContext) -> bytes:
    _, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=ctx, server_hostname="localhost"
    )
    try:
        cert = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert cert is not None
        return bytes(cert)
    finally:
        writer.close()
        await writer.wait_closed()


async def get(server: TestServer, ctx: ssl.SSLContext) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"https://localhost:{server.port}/", ssl=ctx) as resp,
    ):
        assert resp.status == 200
        return await resp.text()


# --- server_context --------------------------------------------------------------------


async def test_serves_the_configured_certificate(
    ca: trustme.CA, serve: Serve, hits: list[str], tmp_path: Path
) -> None:
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    server = await serve(server_context(settings_for(*write_pair(leaf, tmp_path))))
    assert await get(server, trusting(ca)) == "ok"
    assert hits == ["/"]
    assert await served_cert(server, trusting(ca)) == der(leaf)
    _, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=trusting(ca), server_hostname="localhost"
    )
    sslobj = writer.get_extra_info("ssl_object")
    assert sslobj.version() in ("TLSv1.2", "TLSv1.3")
    writer.close()
    await writer.wait_closed()


async def test_server_refuses_weak_tls12_ciphers(
    ca: trustme.CA, serve: Serve, tmp_path: Path
) -> None:
    server = await serve(
        server_context(settings_for(*write_pair(ca.issue_cert("localhost"), tmp_path)))
    )
    weak = trusting(ca)
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    # CBC suites that Python's own default list would still accept (trustme keys are ECDSA).
    weak.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384")
    with pytest.raises(REFUSED):
        await served_cert(server, weak)
    strong = trusting(ca)
    strong.maximum_version = ssl.TLSVersion.TLSv1_2
    assert await served_cert(server, strong)  # TLS 1.2 itself is still accepted


async def test_min_version_13_refuses_a_tls12_client(
    ca: trustme.CA, serve: Serve, tmp_path: Path
) -> None:
    cert, key = write_pair(ca.issue_cert("localhost"), tmp_path)
    server = await serve(server_context(settings_for(cert, key, min_version="1.3")))
    old = trusting(ca)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(REFUSED):
        await served_cert(server, old)
    assert await served_cert(server, trusting(ca))


# --- mTLS ------------------------------------------------------------------------------


@pytest.fixture
async def mtls(ca: trustme.CA, serve: Serve, tmp_path: Path) -> MTLS:
    client_ca = trustme.CA()
    client_ca.cert_pem.write_to_path(str(tmp_path / "clients.pem"))
    cert, key = write_pair(ca.issue_cert("localhost"), tmp_path)
    settings = settings_for(cert, key, client_ca_file=str(tmp_path / "clients.pem"))
    return await serve(server_context(settings)), client_ca


async def test_mtls_refuses_a_client_without_certificate(
    ca: trustme.CA, mtls: MTLS, hits: list[str]
) -> None:
    server, _ = mtls
    with pytest.raises(HTTP_REFUSED):
        await get(server, trusting(ca))
    assert hits == []


async def test_mtls_accepts_a_client_certificate_from_the_bundle(
    ca: trustme.CA, mtls: MTLS, hits: list[str]
) -> None:
    server, client_ca = mtls
    client = client_ca.issue_cert("team-a@example.org")
    assert await get(server, trusting(ca, client)) == "ok"
    assert hits == ["/"]


async def test_mtls_refuses_a_client_certificate_from_another_ca(
    ca: trustme.CA, mtls: MTLS, hits: list[str]
) -> None:
    server, _ = mtls
    stranger = trustme.CA().issue_cert("team-a@example.org")
    with pytest.raises(HTTP_REFUSED):
        await get(server, trusting(ca, stranger))
    assert hits == []


# --- clear errors ----------------------------------------------------------------------


def test_missing_certificate_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    with pytest.raises(TLSFileError) as err:
        server_context(settings_for(missing, tmp_path / "nope.key"))
    assert err.value.option == "server.tls.cert_file"
    assert str(missing) in str(err.value)
    assert "cannot read" in str(err.value)


def test_directory_instead_of_key_file(ca: trustme.CA, tmp_path: Path) -> None:
    cert, _ = write_pair(ca.issue_cert("localhost"), tmp_path / "a")
    with pytest.raises(TLSFileError) as err:
        server_context(settings_for(cert, tmp_path))
    assert err.value.option == "server.tls.key_file"
    assert "cannot read" in err.value.problem


def test_key_that_does_not_match_names_both_files_but_no_contents(
    ca: trustme.CA, tmp_path: Path
) -> None:
    cert, _ = write_pair(ca.issue_cert("localhost"), tmp_path / "a")
    _, other_key = write_pair(ca.issue_cert("localhost"), tmp_path / "b")
    with pytest.raises(TLSFileError) as err:
        server_context(settings_for(cert, other_key))
    message = str(err.value)
    assert err.value.option == "server.tls.key_file"
    assert "does not match" in message
    assert str(cert) in message
    assert str(other_key) in message
    for secret_line in other_key.read_text().splitlines()[1:-1]:
        assert secret_line not in message


@pytest.mark.parametrize(
    ("which", "content", "expected"),
    [
        ("cert", b"not a certificate\n", "no valid PEM certificate"),
        ("cert", b"", "no valid PEM certificate"),
        ("key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "no valid PEM"),
    ],
)
def test_garbage_files(
    ca: trustme.CA, tmp_path: Path, which: str, content: bytes, expected: str
) -> None:
    cert, key = write_pair(ca.issue_cert("localhost"), tmp_path)
    (cert if which == "cert" else key).write_bytes(content)
    with pytest.raises(TLSFileError) as err:
        server_context(settings_for(cert, key))
    assert expected in err.value.problem
    assert err.value.path == str(cert if which == "cert" else key)


def test_encrypted_key_is_refused_without_prompting(ca: trustme.CA, tmp_path: Path) -> None:
    leaf = ca.issue_cert("localhost")
    cert, key = write_pair(leaf, tmp_path)
    private = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"hunter2"),
        )
    )
    with pytest.raises(TLSFileError, match="encrypted"):
        server_context(settings_for(cert, key))


def test_missing_client_ca_file(ca: trustme.CA, tmp_path: Path) -> None:
    cert, key = write_pair(ca.issue_cert("localhost"), tmp_path)
    with pytest.raises(TLSFileError) as err:
        server_context(settings_for(cert, key, client_ca_file=str(tmp_path / "ca.pem")))
    assert err.value.option == "server.tls.client_ca_file"


# --- CertReloader ----------------------------------------------------------------------


def k8s_secret_volume(directory: Path, leaf: trustme.LeafCert, version: int) -> tuple[Path, Path]:
    """Lay out a Secret volume the way the kubelet does, and rotate it the same way:
    files in a timestamped directory, `..data` pointing at it, the visible names
    pointing through `..data`; a rotation swaps `..data` atomically."""
    real = directory / f"..2026_11_27_{version:02d}"
    write_pair(leaf, real)
    tmp = directory / "..data_tmp"
    tmp.symlink_to(real.name)
    os.replace(tmp, directory / "..data")
    for name in ("tls.crt", "tls.key"):
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")
    return directory / "tls.crt", directory / "tls.key"


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def reloads(metrics: Metrics, outcome: str) -> float | None:
    return metrics.registry.get_sample_value("zdr_gateway_tls_reloads_total", {"outcome": outcome})


@pytest.mark.parametrize("how", ["rewrite", "symlink-swap"])
async def test_rotation_is_served_to_new_connections(
    ca: trustme.CA, serve: Serve, metrics: Metrics, tmp_path: Path, how: str
) -> None:
    old = ca.issue_cert("localhost", not_after=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    new = ca.issue_cert("localhost", not_after=dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
    if how == "rewrite":
        cert, key = write_pair(old, tmp_path)
    else:
        cert, key = k8s_secret_volume(tmp_path, old, 1)
    settings = settings_for(cert, key, reload_interval_seconds=FAST)
    ctx = server_context(settings)
    reloader = CertReloader(ctx, settings, metrics)
    server = await serve(ctx)
    expiry = "zdr_gateway_tls_cert_expiry_timestamp_seconds"
    assert (
        metrics.registry.get_sample_value(expiry)
        == dt.datetime(2030, 1, 1, tzinfo=dt.UTC).timestamp()
    )
    assert reloads(metrics, "success") == 0
    assert reloads(metrics, "error") == 0

    # A connection opened before the rotation...
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=trusting(ca), server_hostname="localhost"
    )
    await reloader.start()
    try:
        assert await served_cert(server, trusting(ca)) == der(old)
        if how == "rewrite":
            write_pair(new, tmp_path)
        else:
            k8s_secret_volume(tmp_path, new, 2)

        async def rotated() -> bool:
            return await served_cert(server, trusting(ca)) == der(new)

        await eventually(rotated)
        assert reloads(metrics, "success") == 1
        assert reloads(metrics, "error") == 0
        assert metrics.registry.get_sample_value(expiry) == new_expiry(new)
        # ...keeps working, still on the old certificate.
        assert writer.get_extra_info("ssl_object").getpeercert(binary_form=True) == der(old)
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 200")
    finally:
        writer.close()
        await writer.wait_closed()
        await reloader.stop()


def new_expiry(leaf: trustme.LeafCert) -> float:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    return cert.not_valid_after_utc.timestamp()


@pytest.mark.parametrize("breakage", ["mismatched-key", "half-written-cert", "deleted-key"])
async def test_broken_rotation_keeps_the_old_certificate(
    ca: trustme.CA, serve: Serve, metrics: Metrics, tmp_path: Path, breakage: str
) -> None:
    old = ca.issue_cert("localhost")
    cert, key = write_pair(old, tmp_path)
    settings = settings_for(cert, key, reload_interval_seconds=FAST)
    ctx = server_context(settings)
    reloader = CertReloader(ctx, settings, metrics)
    server = await serve(ctx)
    await reloader.start()
    try:
        new = ca.issue_cert("localhost")
        new_cert = b"".join(blob.bytes() for blob in new.cert_chain_pems)
        if breakage == "mismatched-key":
            cert.write_bytes(new_cert)  # the key file still holds the old key
        elif breakage == "half-written-cert":
            cert.write_bytes(new_cert[: len(new_cert) // 2])
        else:
            key.unlink()

        async def refused() -> bool:
            return reloads(metrics, "error") == 1

        await eventually(refused)
        assert await served_cert(server, trusting(ca)) == der(old)
        # An unchanged broken state is counted once, not on every tick. Nothing to wait
        # for: the sleep lets ticks pass (the absence of more counts is the assertion).
        await asyncio.sleep(5 * FAST)
        assert reloads(metrics, "error") == 1
        assert reloads(metrics, "success") == 0

        # Once the files are whole again, the rotation goes through.
        write_pair(new, tmp_path)

        async def rotated() -> bool:
            return await served_cert(server, trusting(ca)) == der(new)

        await eventually(rotated)
        assert reloads(metrics, "success") == 1
    finally:
        await reloader.stop()


async def test_unchanged_content_is_not_reloaded(
    ca: trustme.CA, metrics: Metrics, tmp_path: Path
) -> None:
    cert, key = write_pair(ca.issue_cert("localhost"), tmp_path)
    settings = settings_for(cert, key)
    reloader = CertReloader(server_context(settings), settings, metrics)
    assert await reloader.check() is False  # nothing changed
    cert.write_bytes(cert.read_bytes())  # new mtime, same bytes
    os.utime(cert, ns=(1, 1))
    assert await reloader.check() is False
    assert reloads(metrics, "success") == 0
    assert reloads(metrics, "error") == 0


async def test_client_ca_rotation_trusts_the_new_ca(
    ca: trustme.CA, serve: Serve, metrics: Metrics, hits: list[str], tmp_path: Path
) -> None:
    first, second = trustme.CA(), trustme.CA()
    bundle = tmp_path / "clients.pem"
    first.cert_pem.write_to_path(str(bundle))
    cert, key = write_pair(ca.issue_cert("localhost"), tmp_path)
    settings = settings_for(cert, key, client_ca_file=str(bundle))
    ctx = server_context(settings)
    reloader = CertReloader(ctx, settings, metrics)
    server = await serve(ctx)
    newcomer = second.issue_cert("team-b@example.org")
    with pytest.raises(HTTP_REFUSED):
        await get(server, trusting(ca, newcomer))
    bundle.write_bytes(first.cert_pem.bytes() + second.cert_pem.bytes())
    assert await reloader.check() is True
    assert await get(server, trusting(ca, newcomer)) == "ok"
    assert await get(server, trusting(ca, first.issue_cert("team-a@example.org"))) == "ok"
    assert hits == ["/", "/"]


async def test_lifespan_starts_and_stops_the_watch(
    ca: trustme.CA, metrics: Metrics, tmp_path: Path
) -> None:
    cert, key = write_pair(ca.issue_cert("localhost"), tmp_path)
    settings = settings_for(cert, key, reload_interval_seconds=FAST)
    reloader = CertReloader(server_context(settings), settings, metrics)
    life = reloader.lifespan(None)
    await anext(life)
    write_pair(ca.issue_cert("localhost"), tmp_path)

    async def reloaded() -> bool:
        return reloads(metrics, "success") == 1

    await eventually(reloaded)
    with pytest.raises(StopAsyncIteration):
        await anext(life)
    write_pair(ca.issue_cert("localhost"), tmp_path)
    await asyncio.sleep(4 * FAST)  # ticks that would reload, were it running (kept: see above)
    assert reloads(metrics, "success") == 1  # stopped: no more checks


# --- client_context (upstream side) ----------------------------------------------------


@pytest.fixture
async def upstream(serve: Serve, tmp_path: Path) -> Upstream:
    """An upstream whose certificate is from a private CA, valid for `localhost` only."""
    private = trustme.CA()
    private.cert_pem.write_to_path(str(tmp_path / "upstream-ca.pem"))
    cert, key = write_pair(private.issue_cert("localhost"), tmp_path / "upstream")
    return await serve(server_context(settings_for(cert, key))), tmp_path / "upstream-ca.pem"


async def test_client_context_refuses_an_untrusted_upstream(upstream: Upstream) -> None:
    server, _ = upstream
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await get(server, client_context(None))


async def test_client_context_trusts_the_configured_bundle(
    upstream: Upstream, hits: list[str]
) -> None:
    server, ca_file = upstream
    assert await get(server, client_context(str(ca_file))) == "ok"
    assert hits == ["/"]


async def test_client_context_checks_the_hostname(upstream: Upstream, hits: list[str]) -> None:
    server, ca_file = upstream
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            # The certificate names `localhost`, not 127.0.0.1.
            await session.get(f"https://127.0.0.1:{server.port}/", ssl=client_context(str(ca_file)))
    assert hits == []


def test_client_context_names_a_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(TLSFileError) as err:
        client_context(str(tmp_path / "missing.pem"), option="upstreams[0].ca_file")
    assert err.value.option == "upstreams[0].ca_file"
    assert str(tmp_path / "missing.pem") in str(err.value)


async def test_refused_rotation_is_logged_by_option_and_file_only(
    ca: trustme.CA, metrics: Metrics, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = write_pair(ca.issue_cert("localhost"), tmp_path)
    settings = settings_for(cert, key)
    reloader = CertReloader(server_context(settings), settings, metrics)
    other = ca.issue_cert("localhost")
    key.write_bytes(other.private_key_pem.bytes())  # no longer matches the certificate
    with caplog.at_level("INFO", logger="gateway.serve.tls"):
        assert await reloader.check() is False
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage() == "tls rotation refused; still serving the previous certificate"
    assert record.config_source == str(key)  # type: ignore[attr-defined]
    problem = record.config_problem  # type: ignore[attr-defined]
    assert problem.startswith("server.tls.key_file: the private key does not match")
    assert "PRIVATE KEY" not in caplog.text
    assert reloads(metrics, "error") == 1


async def test_refused_rotation_line_survives_the_log_allow_list(
    ca: trustme.CA, tmp_path: Path
) -> None:
    cert, key = write_pair(ca.issue_cert("localhost"), tmp_path)
    settings = settings_for(cert, key)
    reloader = CertReloader(server_context(settings), settings)
    key.write_bytes(ca.issue_cert("localhost").private_key_pem.bytes())
    buf = io.StringIO()
    saved = (sys.excepthook, threading.excepthook, sys.unraisablehook, logging.raiseExceptions)
    root = logging.getLogger()
    old_handlers, old_level = list(root.handlers), root.level
    logs.configure("info", buf)
    try:
        assert await reloader.check() is False
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in old_handlers:
            root.addHandler(h)
        root.setLevel(old_level)
        sys.excepthook, threading.excepthook, sys.unraisablehook, logging.raiseExceptions = saved
        logging.captureWarnings(False)
        logging.getLogger("aiohttp.access").disabled = False
    [line] = [json.loads(x) for x in buf.getvalue().splitlines() if "rotation refused" in x]
    assert line["config_source"] == str(key)
    assert line["config_problem"].startswith("server.tls.key_file: the private key does not")
    assert "PRIVATE KEY" not in buf.getvalue()


async def test_rotation_onto_an_expired_certificate_is_refused(
    ca: trustme.CA, metrics: Metrics, tmp_path: Path
) -> None:
    import datetime as dt

    good = ca.issue_cert("localhost")
    cert, key = write_pair(good, tmp_path)
    settings = settings_for(cert, key)
    reloader = CertReloader(server_context(settings), settings, metrics)
    now = dt.datetime.now(dt.UTC)
    expired = ca.issue_cert(
        "localhost", not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)
    )
    write_pair(expired, tmp_path)
    assert await reloader.check() is False
    assert reloader.not_after == new_expiry(good)  # still serving the good one
    assert reloads(metrics, "error") == 1
    write_pair(ca.issue_cert("localhost"), tmp_path)  # a valid rotation still goes through
    assert await reloader.check() is True
