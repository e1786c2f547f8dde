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
import contextlib
import logging

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

from gateway.errors import Unavailable

log = logging.getLogger("gateway.cloud")
# The request headers that are signed; the rest of what goes upstream need not be.
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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

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
        signed = {"host": host, **{k: v for k, v in headers.items() if k in SIGNED}}
        request = AWSRequest(method=method, url=url, data=body or b"", headers=signed)
        SigV4Auth(creds, service, region).add_auth(request)
        out = [("X-Amz-Date", request.headers["X-Amz-Date"])]
        if creds.token:
            out.append(("X-Amz-Security-Token", creds.token))
        out.append(("Authorization", request.headers["Authorization"]))
        return out
