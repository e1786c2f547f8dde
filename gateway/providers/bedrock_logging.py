"""Bedrock model invocation logging: provider-side retention, seen from the gateway.

When an AWS account turns model invocation logging on for a region, Bedrock writes
prompts and completions to CloudWatch Logs or S3: ZDR is broken outside the
gateway's reach. Where its credentials allow (`bedrock:GetModelInvocationLoggingConfiguration`),
the gateway reads the setting from the control plane (`GET /logging/modelinvocations`
on `bedrock.{region}.amazonaws.com`, SigV4 service `bedrock`) at start-up and every
`invocation_logging_check_seconds`, and reports it in /zdr/posture and
`zdr_gateway_provider_invocation_logging` (1 logs, 0 does not, -1 unknown). The
policy (`policy.provider_logging`) can refuse to route to such a target.

States: `on` (a destination and a data type delivered), `off`, `unknown` (no SigV4
credentials, access denied, unreachable: `reason` says which), `not_checked`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from prometheus_client import Gauge

from gateway import tasks
from gateway.http1 import ClientError, Pool
from gateway.providers.aws_auth import AwsCredentials
from gateway.providers.cloud_settings import BedrockSettings
from gateway.serve.tls import client_context

log = logging.getLogger("gateway.cloud")
PATH = "/logging/modelinvocations"
_DATA = ("textDataDeliveryEnabled", "imageDataDeliveryEnabled", "embeddingDataDeliveryEnabled",
         "videoDataDeliveryEnabled")  # fmt: skip
_DESTINATIONS = {"cloudWatchConfig": "cloudwatch", "s3Config": "s3"}
GAUGE_VALUE = {"on": 1, "off": 0, "unknown": -1, "not_checked": -1}


def read_config(doc: Any) -> tuple[str, list[str]]:
    """(state, destinations) from a GetModelInvocationLoggingConfiguration answer."""
    config = doc.get("loggingConfig") if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        return "off", []
    destinations = sorted(name for key, name in _DESTINATIONS.items() if config.get(key))
    # A missing flag counts as delivered: when unsure, assume retention.
    delivered = any(config.get(flag, True) is not False for flag in _DATA)
    return ("on" if destinations and delivered else "off"), destinations


class InvocationLogging:
    def __init__(
        self,
        upstream: str,
        target: str,
        settings: BedrockSettings,
        credentials: AwsCredentials | None,
        gauge: Gauge | None,
    ) -> None:
        self.upstream = upstream
        self.target = target
        self.settings = settings
        self.credentials = credentials
        self.origin = settings.control_url or f"https://bedrock.{settings.region}.amazonaws.com"
        self.state = "not_checked"
        self.reason: str | None = "disabled" if not settings.check_invocation_logging else None
        self.destinations: list[str] = []
        self.checked_at: float | None = None
        self._gauge = gauge
        self._pool: Pool | None = None
        self._task: asyncio.Task[None] | None = None

    def posture(self) -> dict[str, Any]:
        return {
            "invocation_logging": self.state,
            "invocation_logging_reason": self.reason,
            "invocation_logging_destinations": self.destinations,
            "invocation_logging_checked_at": self.checked_at,
            "region": self.settings.region,
        }

    async def start(self) -> None:
        self._set("not_checked", self.reason)
        if not self.settings.check_invocation_logging:
            return
        https = self.origin.startswith("https:")
        self._pool = Pool(
            self.origin, tls=client_context(None) if https else None, limit=1,
            connect_timeout=5, first_byte_timeout=10, total_timeout=20,
        )  # fmt: skip
        await self.check()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        await tasks.cancel(self._task)
        if self._pool is not None:
            await self._pool.close()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.invocation_logging_check_seconds)
            await self.check()

    async def check(self) -> None:
        creds = self.credentials
        if self._pool is None or creds is None or creds.frozen is None:
            # A Bedrock API key does not open the control plane: SigV4 only.
            self._set("unknown", "no_sigv4_credentials")
            return
        headers = creds.sign(
            "bedrock", self.settings.region, "GET", self.origin + PATH,
            self._pool.host_header, {}, None,
        )  # fmt: skip
        try:
            resp = await self._pool.request("GET", PATH, headers)
            try:
                body = b"".join([chunk async for chunk in resp])[: 256 * 1024]
            finally:
                resp.release()
        except (ClientError, TimeoutError, OSError):
            self._set("unknown", "unreachable")
            return
        if resp.status == 200:
            try:
                state, self.destinations = read_config(orjson.loads(body))
            except ValueError:
                self._set("unknown", "unreadable")
                return
            self._set(state, None)
        else:
            self._set("unknown", "access_denied" if resp.status == 403 else "error")

    def _set(self, state: str, reason: str | None) -> None:
        if state != self.state:
            log.info(
                "bedrock invocation logging",
                extra={
                    "upstream": self.upstream,
                    "target": self.target,
                    "outcome": state,
                    "reason": reason,
                },
            )
        self.state, self.reason = state, reason
        if state in ("on", "off"):
            self.checked_at = time.time()
        if self._gauge is not None:
            self._gauge.labels(self.upstream, self.target).set(GAUGE_VALUE[state])
