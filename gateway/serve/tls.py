"""TLS on both sides of the gateway.

- `server_context(settings)`: the listener's context. TLS >= 1.2 (or 1.3), forward
  secrecy and AEAD ciphers only, the server certificate and key; with
  `client_ca_file`, client certificates are required and verified (mTLS).
- `CertReloader`: keeps a server context serving what is on disk. cert-manager
  rotates certificates by rewriting a Kubernetes Secret, whose volume swaps a
  `..data` symlink; the reloader notices (stat, then a content hash) and loads the
  new chain into the *same* `SSLContext`: new handshakes get the new certificate,
  open connections are untouched. A rotation that does not load (half-written
  files, a key that does not match) is refused and the old certificate stays.
- `client_context(ca_file)`: verified TLS to upstreams (system CAs plus an optional
  bundle), hostname checking on.

Errors name the option and the file, never the file's contents.

cryptography (~8 MiB resident) parses the files; it is imported when a file is
read (TLS on, or an upstream `ca_file`), at start-up, and never by a plaintext
gateway whose upstreams use the system CAs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway import tasks
from gateway.config import ConfigError, TLSSettings
from gateway.observe.metrics import Metrics

if TYPE_CHECKING:
    from cryptography import x509

log = logging.getLogger(__name__)

# Mozilla "intermediate" for TLS 1.2, ECDHE only (no DH parameters to manage).
# TLS 1.3 suites are not set here: every suite OpenSSL enables for 1.3 is AEAD.
TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
_MAX_FILE_BYTES = 1024 * 1024  # a certificate bundle is kilobytes; anything larger is a mistake
_CERT, _KEY, _CA = "server.tls.cert_file", "server.tls.key_file", "server.tls.client_ca_file"


class TLSFileError(ConfigError):
    """A certificate, key or CA file that cannot be used, named by option and path."""

    def __init__(self, option: str, path: str, problem: str) -> None:
        super().__init__(path, [(option, problem)])
        self.option = option
        self.path = path
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Material:
    """The bytes of one consistent set of TLS files, validated, and what was learnt from them."""

    # SECURITY: repr=False keeps key material out of any repr, log line or traceback.
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    ca_pem: bytes | None = field(repr=False)
    digest: str
    not_after: float  # the leaf certificate's notAfter, Unix time
    ca_ders: frozenset[bytes] = field(repr=False)


def server_context(settings: TLSSettings) -> ssl.SSLContext:
    """A server context loaded from the configured files. Raises `TLSFileError`."""
    ctx = _new_server_context(settings)
    load(ctx, read_material(settings))
    return ctx


def client_context(ca_file: str | None, *, option: str = "upstreams[].ca_file") -> ssl.SSLContext:
    """Verified TLS for upstream connections: system CAs, plus `ca_file` when given."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    # SECURITY: these are create_default_context's defaults; stated so that no later
    # edit can quietly turn verification off.
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        pem = _read(option, ca_file)
        _certificates(option, ca_file, pem)
        _openssl(option, ca_file, lambda: ctx.load_verify_locations(cadata=pem.decode("latin-1")))
    return ctx


def read_material(settings: TLSSettings) -> Material:
    """Read and validate the configured files: parseable, key matches certificate, and
    accepted by OpenSSL (on a scratch context, so a failure touches nothing live)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    # TLSSettings guarantees both files whenever TLS is enabled.
    assert settings.cert_file
    assert settings.key_file
    cert_file, key_file, ca_file = settings.cert_file, settings.key_file, settings.client_ca_file
    cert_pem, key_pem = _read(_CERT, cert_file), _read(_KEY, key_file)
    ca_pem = _read(_CA, ca_file) if ca_file else None
    leaf = _certificates(_CERT, cert_file, cert_pem)[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        problem = "the private key is encrypted; supply it unencrypted"
        raise TLSFileError(_KEY, key_file, problem) from None
    except (ValueError, UnsupportedAlgorithm):
        raise TLSFileError(_KEY, key_file, "no valid PEM private key in the file") from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        problem = f"the private key does not match the certificate in {cert_file}"
        raise TLSFileError(_KEY, key_file, problem)
    ca_ders: frozenset[bytes] = frozenset()
    if ca_file and ca_pem is not None:
        cas = _certificates(_CA, ca_file, ca_pem)
        ca_ders = frozenset(c.public_bytes(serialization.Encoding.DER) for c in cas)
    digest = hashlib.sha256()
    for part in (cert_pem, key_pem, ca_pem or b""):
        digest.update(len(part).to_bytes(8, "big") + part)
    material = Material(
        cert_pem=cert_pem,
        key_pem=key_pem,
        ca_pem=ca_pem,
        digest=digest.hexdigest(),
        not_after=leaf.not_valid_after_utc.timestamp(),
        ca_ders=ca_ders,
    )
    scratch = _new_server_context(settings)
    _openssl(_CERT, cert_file, lambda: load(scratch, material))
    if material.not_after < time.time():
        log.warning("tls certificate expired", extra=_operator(_CERT, cert_file))
    return material


def load(ctx: ssl.SSLContext, material: Material) -> None:
    """Load validated material into `ctx` (the certificate chain replaces the old one;
    CA certificates are added to the trust store)."""
    with _in_memory(material.cert_pem) as cert_path, _in_memory(material.key_pem) as key_path:
        ctx.load_cert_chain(cert_path, key_path, password=_no_password)
    if material.ca_pem is not None:
        ctx.load_verify_locations(cadata=material.ca_pem.decode("latin-1"))


def _new_server_context(settings: TLSSettings) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if settings.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    ctx.set_ciphers(TLS12_CIPHERS)
    # SECURITY: client-initiated renegotiation is a DoS lever and not needed by HTTP/1.1.
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    # aiohttp serves HTTP/1.1 only; saying so lets h2-preferring clients settle at once.
    ctx.set_alpn_protocols(["http/1.1"])
    if settings.client_ca_file:
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _read(option: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise TLSFileError(option, path, f"cannot read the file ({reason})") from None
    if len(data) > _MAX_FILE_BYTES:
        raise TLSFileError(option, path, "the file is larger than 1 MiB; not a PEM file")
    return data


def _certificates(option: str, path: str, pem: bytes) -> list[x509.Certificate]:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise TLSFileError(option, path, "no valid PEM certificate in the file") from None


def _openssl(option: str, path: str, action: Callable[[], object]) -> None:
    try:
        action()
    except ssl.SSLError as exc:
        # `reason` is OpenSSL's fixed code (e.g. EE_KEY_TOO_SMALL), never file content.
        raise TLSFileError(
            option, path, f"OpenSSL refused it ({exc.reason or 'no reason'})"
        ) from None


def _no_password() -> bytes:
    # SECURITY: without a callback OpenSSL would prompt on the terminal for an
    # encrypted key, blocking the event loop; an empty password fails instead.
    return b""


@contextlib.contextmanager
def _in_memory(data: bytes) -> Iterator[str]:
    """A path OpenSSL can open that holds exactly `data`.

    SECURITY: key material reaches OpenSSL through an anonymous in-memory file, never
    a temporary file on disk; and the bytes loaded are the bytes validated, not a
    second read of a file that may be changing under us."""
    fd = os.memfd_create("zdr-gateway-tls", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _operator(option: str, path: str | None, problem: str | None = None) -> dict[str, str]:
    """Log fields for a TLS file: operator-authored text (a configured path, the option's
    name, the gateway's fixed explanation), in the fields the log allow-list keeps for it."""
    return {
        "config_source": path or "",
        "config_problem": f"{option}: {problem}" if problem else option,
    }


_Stat = tuple[int, int, int, int] | None
_Seen = tuple[_Stat, ...]


class CertReloader:
    """Reloads the server certificate, key and client CA bundle of `context` when they
    change on disk. Run it with `start()`/`stop()`, or `lifespan` in `app.cleanup_ctx`.

    Each tick stats the files (device, inode, size, mtime: a Kubernetes symlink swap
    changes the inode); only when that changed are they read, validated and hashed,
    and only new content is loaded. Files still changing while read are looked at
    again next tick rather than counted as a failure. A CA removed from the bundle
    stays trusted until restart: OpenSSL's trust store only grows.
    """

    def __init__(
        self, context: ssl.SSLContext, settings: TLSSettings, metrics: Metrics | None = None
    ) -> None:
        self.context = context
        self._settings = settings
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None
        # The baseline is what this reloader itself loads, so nothing that changed
        # since the context was built can be missed.
        self._seen = _stat_all(settings)
        self._material = read_material(settings)
        load(context, self._material)
        if metrics is not None:
            for outcome in ("success", "error"):
                metrics.tls_reloads.labels(outcome)
            metrics.tls_cert_expiry.set(self._material.not_after)

    @property
    def not_after(self) -> float:
        return self._material.not_after

    async def check(self) -> bool:
        """Look at the files once; True when a new certificate was loaded."""
        seen, found = await asyncio.to_thread(_look, self._settings, self._seen)
        if seen is None:
            return False
        self._seen = seen
        if isinstance(found, TLSFileError):
            self._failed(found.option, found.path, found.problem)
            return False
        assert found is not None
        if found.digest == self._material.digest:
            return False  # touched or re-linked, same bytes
        if found.not_after < time.time() < self._material.not_after:
            # Rotating onto an expired certificate would break every new handshake
            # while the one being served is still good: keep it, and say so.
            self._failed(_CERT, self._settings.cert_file, "the new certificate has expired")
            return False
        previous, self._material = self._material, found
        try:
            load(self.context, found)
        except (ssl.SSLError, OSError):
            # Validated on a scratch context, so this is not expected; put back what was
            # served rather than leave a half-loaded context.
            self._material = previous
            load(self.context, previous)
            self._failed(_CERT, self._settings.cert_file, "loading into the live context failed")
            return False
        if previous.ca_ders - found.ca_ders:
            log.warning(
                "tls client CA removed; it stays trusted until restart",
                extra=_operator(_CA, self._settings.client_ca_file),
            )
        if self._metrics is not None:
            self._metrics.tls_reloads.labels("success").inc()
            self._metrics.tls_cert_expiry.set(found.not_after)
        log.info(
            "tls certificate reloaded",
            extra=_operator(_CERT, self._settings.cert_file),
        )
        return True

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tls-cert-reloader")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)

    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        """For `app.cleanup_ctx.append(reloader.lifespan)`."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.reload_interval_seconds)
            try:
                await self.check()
            except Exception:
                # Keep watching: the next rotation may well be fine.
                log.exception("tls certificate check failed")
                self._failed(_CERT, self._settings.cert_file, "unexpected error")

    def _failed(self, option: str, path: str | None, problem: str) -> None:
        if self._metrics is not None:
            self._metrics.tls_reloads.labels("error").inc()
        log.error(
            "tls rotation refused; still serving the previous certificate",
            extra=_operator(option, path, problem),
        )


def _stat_all(settings: TLSSettings) -> _Seen:
    seen: list[_Stat] = []
    for path in (settings.cert_file, settings.key_file, settings.client_ca_file):
        if not path:
            continue
        try:
            st = os.stat(path)
        except OSError:
            seen.append(None)
        else:
            seen.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(seen)


def _look(
    settings: TLSSettings, seen: _Seen
) -> tuple[_Seen | None, Material | TLSFileError | None]:
    """In a worker thread: (new stat, material or error), or (None, None) for "nothing to
    do this tick" (unchanged, or still being written)."""
    before = _stat_all(settings)
    if before == seen:
        return None, None
    try:
        return before, read_material(settings)
    except TLSFileError as exc:
        if _stat_all(settings) != before:
            return None, None
        return before, exc
