"""Google OAuth2 access tokens for Vertex AI, refreshed in the background off the event loop.

google-auth finds credentials the usual way: a service-account JSON key file (its
`token_uri` gets a signed JWT assertion), or `google.auth.default()`
(GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default credentials, the GKE
metadata server). Its `refresh()` is a blocking HTTP call, so it runs in a worker
thread, `refresh_ahead_seconds` before the token expires (tokens last an hour);
requests read the current token from memory and never wait for a refresh.

Imported only when a Vertex upstream is configured.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

import google.auth
import google.auth.transport.requests
from google.oauth2 import service_account

from gateway import tasks
from gateway.errors import Unavailable

log = logging.getLogger("gateway.cloud")
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
_RETRY_SECONDS = 5.0


class GoogleToken:
    def __init__(self, credentials_file: str | None, ahead_seconds: float) -> None:
        self._file = credentials_file
        self._ahead = ahead_seconds
        self._credentials: Any = None
        # SECURITY: the token exists here (and in google-auth's object), nowhere else.
        self._token: str | None = None
        self._expiry: datetime.datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self.refreshes = 0

    async def start(self) -> None:
        await self._refresh()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)

    def authorization(self) -> str:
        """`Bearer <token>` for a request now; a clear 503 when there is no valid token."""
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        if self._token is None or (self._expiry is not None and self._expiry <= now):
            raise Unavailable(
                "The gateway has no valid Google access token for the upstream.",
                reason="upstream_credentials",
            )
        return f"Bearer {self._token}"

    def _delay(self) -> float:
        if self._token is None or self._expiry is None:
            return _RETRY_SECONDS
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        return max(0.5, (self._expiry - now).total_seconds() - self._ahead)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._delay())
            await self._refresh()

    async def _refresh(self) -> None:
        try:
            self._token, self._expiry = await asyncio.to_thread(self._fetch)
            self.refreshes += 1
        except Exception as exc:
            # google-auth's messages can quote the token endpoint's answer: class name only.
            log.warning("google token refresh failed", extra={"error_class": type(exc).__name__})

    def _fetch(self) -> tuple[str, datetime.datetime | None]:
        if self._credentials is None:
            if self._file:
                self._credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                    self._file, scopes=SCOPES
                )
            else:
                self._credentials, _ = google.auth.default(scopes=SCOPES)
        self._credentials.refresh(google.auth.transport.requests.Request())
        return str(self._credentials.token), self._credentials.expiry
