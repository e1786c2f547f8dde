"""Claude on AWS Bedrock behind the Anthropic API (`provider: bedrock`).

Modes (config `bedrock.mode`):
- `mantle` / `runtime`: Bedrock's native Anthropic Messages API
  (`bedrock-mantle.{region}.api.aws/anthropic/v1/messages`, SigV4 service
  `bedrock-mantle`; or `bedrock-runtime.{region}.amazonaws.com/anthropic/...`, service
  `bedrock`). Same request, response and SSE as Anthropic's: the gateway maps the
  model id, signs, and streams as for Anthropic.
- `invoke`: InvokeModel (`/model/{id}/invoke[-with-response-stream]`), body translated
  (`model`/`stream` out, `anthropic_version: bedrock-2023-05-31`, betas in the body's
  `anthropic_beta`), the event stream re-emitted as Anthropic SSE frame by frame.

Cloud-native clients (`AnthropicBedrock`, Claude Code with CLAUDE_CODE_USE_BEDROCK)
call `/model/{id}/...` on the gateway themselves: their event stream goes back byte
for byte (`application/vnd.amazon.eventstream`), usage read from the frames.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
from multidict import CIMultiDict

from gateway.errors import InvalidRequest, NotFound
from gateway.observe.metrics import Metrics
from gateway.providers.aws_auth import AwsCredentials
from gateway.providers.base import UsageReader
from gateway.providers.bedrock_eventstream import (
    DecodedUsage,
    EventStreamToSSE,
    EventStreamUsage,
)
from gateway.providers.bedrock_logging import InvocationLogging
from gateway.providers.bedrock_probes import local_answer
from gateway.providers.cloud import Call, CloudAdapter, Exchange, UpstreamResponse, WholeBody
from gateway.providers.cloud_errors import anthropic_error, bedrock_error
from gateway.providers.cloud_front import BETA_HEADER, ModelIds, model_list_answer, native_model
from gateway.providers.cloud_settings import BedrockSettings
from gateway.routing.settings import TargetSettings

VERSION = "bedrock-2023-05-31"
EVENT_STREAM = "application/vnd.amazon.eventstream"


def invoke_body(doc: dict[str, Any], header_betas: list[str]) -> bytes:
    """An Anthropic Messages body as InvokeModel's: `model`/`stream` out, version and betas in."""
    body = {k: v for k, v in doc.items() if k not in ("model", "stream", "anthropic_version")}
    body["anthropic_version"] = VERSION
    given = body.get("anthropic_beta")
    betas = [*header_betas, *(given if isinstance(given, list) else [])]
    if betas:
        body["anthropic_beta"] = list(dict.fromkeys(betas))
    return orjson.dumps(body)


def host_of(origin: str) -> str:
    """The Host header `gateway.http1.Pool` sends for `origin` (what SigV4 must sign)."""
    parts = urlsplit(origin)
    host = parts.hostname or ""
    default = 443 if parts.scheme == "https" else 80
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


class BedrockAdapter(CloudAdapter):
    name = "bedrock"

    def __init__(
        self, settings: TargetSettings, metrics: Metrics | None = None, upstream: str = ""
    ) -> None:
        assert settings.bedrock is not None
        self.settings: BedrockSettings = settings.bedrock
        self.origin = settings.origin
        self._base = urlsplit(self.origin).path.rstrip("/")
        self._host = host_of(self.origin)
        self.models = ModelIds(self.settings.models)
        self._service = "bedrock-mantle" if self.settings.mode == "mantle" else "bedrock"
        auth = self.settings.auth or ("api_key" if settings.api_key else "sigv4")
        # SECURITY: the upstream credential exists only here (and in botocore's objects).
        self._bearer = f"Bearer {settings.api_key}" if auth == "api_key" else None
        self.credentials = (
            AwsCredentials(self.settings.profile, self.settings.refresh_seconds)
            if self._bearer is None
            else None
        )
        gauge = metrics.provider_logging if metrics is not None else None
        self.logging = InvocationLogging(
            upstream or settings.name, settings.name, self.settings, self.credentials, gauge
        )

    async def start(self) -> None:
        if self.credentials is not None:
            await self.credentials.start()
        await self.logging.start()

    async def close(self) -> None:
        await self.logging.close()
        if self.credentials is not None:
            await self.credentials.close()

    def posture(self) -> dict[str, Any]:
        return {"mode": self.settings.mode, **self.logging.posture()}

    def logging_state(self) -> str:
        return self.logging.state

    def path_model(self, path: str) -> tuple[str | None, bool]:
        model, action = native_model(path)
        if model is None:
            return None, False
        return self.models.client_id(model), action == "invoke-with-response-stream"

    def prepare(self, call: Call) -> Exchange:
        if call.path.startswith("/model/"):
            return self._native(call)
        local = local_answer(call.method, call.path, self.models, self.settings.region)
        if local is None and call.kind == "models":
            local = model_list_answer(call.path, self.models)
        if local is not None:
            return Exchange(local=local)
        if call.kind not in ("messages", "count_tokens") or call.json is None:
            raise NotFound("This endpoint is not offered by the Bedrock upstream.")
        model = call.json.get("model")
        target_id = self.models.cloud_id(model if isinstance(model, str) else "")
        if self.settings.mode != "invoke":
            doc = {**call.json, "model": target_id}
            path = "/anthropic" + call.path
            query = f"?{urlencode(call.query)}" if call.query else ""
            return self._signed(call, path + query, orjson.dumps(doc), BedrockExchange("messages"))
        betas = _header_betas(call.headers)
        invoke = invoke_body(call.json, betas)
        if call.kind == "count_tokens":
            if "max_tokens" not in call.json:
                # InvokeModel requires it; it does not change the count.
                invoke = invoke_body({**call.json, "max_tokens": 1}, betas)
            wrapped = {"input": {"invokeModel": {"body": base64.b64encode(invoke).decode()}}}
            path = f"/model/{quote(target_id, safe='')}/count-tokens"
            return self._signed(call, path, orjson.dumps(wrapped), BedrockExchange("count"))
        action = "invoke-with-response-stream" if call.stream else "invoke"
        path = f"/model/{quote(target_id, safe='')}/{action}"
        return self._signed(call, path, invoke, BedrockExchange("sse" if call.stream else "invoke"))

    def _native(self, call: Call) -> Exchange:
        """A cloud-native client's InvokeModel call: re-targeted, re-signed, passed back as is."""
        if self.settings.mode == "mantle":
            raise NotFound("InvokeModel is not served by this upstream: it uses bedrock-mantle.")
        model, action = native_model(call.path)
        if model is None or call.json is None:
            raise NotFound("Not found: this gateway does not serve that path.")
        target_id = self.models.cloud_id(model)
        path = f"/model/{quote(target_id, safe='')}/{action}"
        if action == "count-tokens":
            # The client's own wrapper, with the invoke body inside checked and re-stamped.
            return self._signed(call, path, _count_body(call.json), BedrockExchange("native"))
        body = invoke_body(call.json, _header_betas(call.headers))
        return self._signed(call, path, body, BedrockExchange("native"))

    def _signed(self, call: Call, target: str, body: bytes, exchange: BedrockExchange) -> Exchange:
        kind = exchange.kind
        headers = [(k, v) for k, v in call.headers.items() if _forwarded(k, kind)]
        headers.append(("content-type", "application/json"))
        if target.endswith("/invoke-with-response-stream"):
            headers.append(("x-amzn-bedrock-accept", "application/json"))
            headers.append(("accept", EVENT_STREAM))
        elif kind != "messages":
            headers.append(("accept", "application/json"))
        if self._bearer is not None:
            headers.append(("authorization", self._bearer))
        else:
            assert self.credentials is not None
            url = self.origin + target
            signed = {"content-type": "application/json"}
            headers += self.credentials.sign(
                self._service, self.settings.region, "POST", url, self._host, signed, body
            )
        exchange.method, exchange.target = "POST", self._base + target
        exchange.headers, exchange.body = headers, body
        return exchange


class BedrockExchange(Exchange):
    """How one Bedrock answer reaches the client, by `kind`: `messages` (the native Messages
    API: as it is), `invoke` (InvokeModel JSON: as it is), `sse` (event stream → SSE),
    `count` (`inputTokens` → `input_tokens`), `native` (a cloud-native client's: unchanged).
    Errors other than the Messages API's own (Anthropic-shaped) become Anthropic's shape."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._translated: EventStreamToSSE | None = None

    async def response(self, resp: UpstreamResponse) -> UpstreamResponse:
        errortype = resp.headers.get("x-amzn-errortype")
        if resp.status >= 400 and (errortype is not None or self.kind != "messages"):
            body = await WholeBody.read(resp)
            status, err, message = bedrock_error(resp.status, errortype, body)
            return WholeBody(resp, status, anthropic_error(err, message))
        if resp.status >= 300 or self.kind in ("messages", "invoke", "native"):
            return resp
        if self.kind == "count":
            return WholeBody(resp, resp.status, _count_answer(await WholeBody.read(resp)))
        self._translated = EventStreamToSSE(resp)
        return self._translated

    def usage_reader(self, default: UsageReader | None) -> UsageReader | None:
        if self._translated is not None and default is not None:
            return DecodedUsage(self._translated.usage)
        if self.kind == "native" and self.target.endswith("-stream") and default is not None:
            return EventStreamUsage()
        return default


def _header_betas(headers: CIMultiDict[str]) -> list[str]:
    return [b.strip() for v in headers.getall(BETA_HEADER, []) for b in v.split(",") if b.strip()]


def _forwarded(name: str, kind: str) -> bool:
    lower = name.lower()
    if kind == "messages":
        return lower != "content-type"  # the native Messages API takes Anthropic's headers
    if lower in ("content-type", "accept"):
        return False
    # InvokeModel: the version and betas are in the body.
    return lower not in ("anthropic-version", BETA_HEADER)


def _count_body(doc: dict[str, Any]) -> bytes:
    try:
        inner = orjson.loads(base64.b64decode(doc["input"]["invokeModel"]["body"], validate=True))
    except (KeyError, TypeError, ValueError):
        raise InvalidRequest("Expected {'input': {'invokeModel': {'body': base64}}}.") from None
    if not isinstance(inner, dict):
        raise InvalidRequest("The invokeModel body must be a JSON object.")
    body = base64.b64encode(invoke_body(inner, [])).decode()
    return orjson.dumps({"input": {"invokeModel": {"body": body}}})


def _count_answer(body: bytes) -> bytes:
    try:
        n = orjson.loads(body).get("inputTokens")
    except (ValueError, AttributeError):
        n = None
    if not isinstance(n, int):
        return anthropic_error("api_error", "Bedrock's token count could not be read.")
    return orjson.dumps({"input_tokens": n})
