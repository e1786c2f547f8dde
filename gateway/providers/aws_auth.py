"""AWS credentials for Bedrock: botocore's chain, refreshed off the event loop; SigV4 signing.

botocore's chain finds credentials the way every AWS SDK does: environment,
shared credentials/config files (a named profile), web identity (EKS IRSA),
container credentials (EKS Pod Identity, ECS), IMDS. Refreshable credentials
refresh themselves when read within 15 minutes of expiry, synchronously, under
a lock that blocks every reader inside 10 minutes of it. So the event loop never
reads them: a background task reads a frozen copy in a worker thread every
`refresh_seconds`, well ahead of expiry, and requests are signed with the copy.

Imported only when a Bedrock upstream is configured (botocore is ~20 MiB RSS).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time

import botocore.session
from botocore.auth import SigV4Auth
from botocore.credentials import Credentials, ReadOnlyCredentials

from gateway import tasks
from gateway.errors import Unavailable

log = logging.getLogger("gateway.cloud")
# The request headers that are signed (with host and x-amz-*); the rest need not be.
SIGNED = ("content-type",)


class AwsCredentials:
    def __init__(self, profile: str | None, refresh_seconds: float) -> None:
        self._profile = profile
        self._refresh_seconds = refresh_seconds
        self._source: Credentials | None = None
        # SECURITY: the secret exists here and in botocore's own object, nowhere else.
        self.frozen: ReadOnlyCredentials | None = None
        self._task: asyncio.Task[None] | None = None
        self.refreshes = 0

    async def start(self) -> None:
        await self._refresh()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            await self._refresh()

    async def _refresh(self) -> None:
        try:
            self.frozen = await asyncio.to_thread(self._read)
            self.refreshes += 1
        except Exception as exc:
            # botocore's messages can name files and profiles, never secrets; the class
            # name is enough to act on and certainly carries nothing.
            log.warning("aws credentials unavailable", extra={"error_class": type(exc).__name__})

    def _read(self) -> ReadOnlyCredentials | None:
        if self._source is None:
            session = botocore.session.Session(profile=self._profile)
            self._source = session.get_credentials()
        if self._source is None:
            return None
        return self._source.get_frozen_credentials()

    def sign(
        self, service: str, region: str, method: str, url: str, host: str, headers: dict[str, str],
        body: bytes | None,
    ) -> list[tuple[str, str]]:  # fmt: skip
        """The headers that carry a SigV4 signature of this request (Authorization, X-Amz-*)."""
        creds = self.frozen
        if creds is None:
            raise Unavailable(
                "The gateway has no AWS credentials to sign the upstream request.",
                reason="upstream_credentials",
            )
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        signed = _Headers({"host": host, "x-amz-date": stamp})
        for name in SIGNED:
            if name in headers:
                signed[name] = headers[name]
        if creds.token:
            signed["x-amz-security-token"] = creds.token
        request = _Request(method, url, signed, body or b"", {"timestamp": stamp})
        signer = _SigV4(creds, service, region)
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        authorization = (
            f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
            f"SignedHeaders={signer.signed_headers(signed)}, Signature={signature}"
        )
        out = [("X-Amz-Date", stamp)]
        if creds.token:
            out.append(("X-Amz-Security-Token", creds.token))
        out.append(("Authorization", authorization))
        return out


class _Headers(dict[str, str]):
    """The signed headers, lower-case, one value each: all SigV4Auth reads of them."""

    def get_all(self, name: str) -> list[str]:
        return [self[name]]


class _Request:
    """The parts of a request SigV4Auth's canonical request and signature read."""

    __slots__ = ("body", "context", "headers", "method", "params", "url")

    def __init__(
        self, method: str, url: str, headers: _Headers, body: bytes, context: dict[str, str]
    ) -> None:
        self.method, self.url, self.headers, self.body = method, url, headers, body
        self.params: dict[str, str] = {}
        self.context = context


class _SigV4(SigV4Auth):  # type: ignore[misc]
    """botocore's SigV4 computation (canonical request, string to sign, signing key),
    fed the few headers the gateway signs as they are.

    PERF: `add_auth` builds an AWSRequest and email-module header maps on every call
    (0.36 ms of a 0.9 ms streamed request, bench.clouds); the same signature from the
    same botocore methods without them, the signing key derived once a day and each
    path quoted once, costs 0.04 ms. tests/support's stand-in
    re-computes every signature with the unmodified `SigV4Auth` and botocore's
    AWSRequest, so the two cannot drift apart unnoticed.
    """

    def headers_to_sign(self, request: _Request) -> _Headers:
        return request.headers

    def _normalize_url_path(self, path: str) -> str:
        # A few distinct paths (configured models and actions): quoted once each.
        quoted = _PATHS.get(path)
        if quoted is None:
            quoted = super()._normalize_url_path(path)
            if len(_PATHS) < _CACHE_MAX:
                _PATHS[path] = quoted
        return str(quoted)

    def signature(self, string_to_sign: str, request: _Request) -> str:
        # The signing key changes once a day (and with the credentials): derived by
        # botocore's chain of four HMACs once, not per request.
        secret, day = self.credentials.secret_key, request.context["timestamp"][0:8]
        key = (secret, day, self._region_name, self._service_name)
        k_signing = _KEYS.get(key)
        if k_signing is None:
            k_date = self._sign(f"AWS4{secret}".encode(), day)
            k_region = self._sign(k_date, self._region_name)
            k_service = self._sign(k_region, self._service_name)
            k_signing = self._sign(k_service, "aws4_request")
            if len(_KEYS) >= _CACHE_MAX:
                _KEYS.clear()
            _KEYS[key] = k_signing
        return hmac.new(k_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


_CACHE_MAX = 256
_PATHS: dict[str, str] = {}
# SECURITY: derived signing keys, in memory only, like the secret they come from.
_KEYS: dict[tuple[str, str, str, str], bytes] = {}
