"""A local stand-in for AWS Bedrock: data plane (both services) and the logging control plane.

- Every request must carry a Bedrock API key as Bearer, or a SigV4 signature that
  this stand-in re-computes with botocore from a secret known to the test (service
  `bedrock-mantle` for `/anthropic/...` when `mantle`, `bedrock` otherwise); a bad
  one gets AWS's 403 `InvalidSignatureException`.
- `/anthropic/v1/messages` (+ `/count_tokens`): the native Messages API, Anthropic SSE.
- `/model/{id}/invoke`, `/invoke-with-response-stream`, `/count-tokens`: InvokeModel,
  with real event stream frames written in slices cut at arbitrary byte positions,
  optional exception frames and in-band `{"type":"error"}` chunks.
- `GET /logging/modelinvocations`: GetModelInvocationLoggingConfiguration, on or off.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hmac
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict

from tests.support.anthropic_events import events_for, message_of
from tests.support.eventstream import chunk, exception

_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*_[0-9]+\]")
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/([a-z-]+)/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$"
)


@dataclass
class Seen:
    method: str
    path: str
    service: str | None
    access_key: str | None
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class Behaviour:
    reply: str = "Hello from the Bedrock stand-in."
    # `x-amzn-errortype` (e.g. "ThrottlingException") and status of an HTTP error answer.
    fail: tuple[int, str] | None = None
    # The message of errors and exception frames.
    fail_message: str = "Stand-in failure."
    # After this many deltas: an exception frame of this type, or an in-band error chunk.
    exception_after: tuple[int, str] | None = None
    inband_error_after: int | None = None
    # Write the event stream in slices of 1..split bytes (0: all at once; -1: frame by frame).
    split: int = 7
    logging_on: bool = False
    count_tokens_supported: bool = True
    # The pii tests: answer "Reply for <the placeholders in the request>." in deltas of
    # 3 characters (a placeholder split across frames), instead of `reply`.
    echo_placeholders: bool = False


@dataclass
class BedrockStandIn:
    region: str = "eu-central-1"
    # access key id → (secret, session token or None)
    secrets: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    api_key: str = "bedrock-api-key-for-tests"
    mantle: bool = True
    behaviour: Behaviour = field(default_factory=Behaviour)
    seen: list[Seen] = field(default_factory=list)
    record: bool = True
    # False only for the benchmark: a signature is required but not re-computed, so the
    # stand-in costs per request what the Anthropic stand-in does (bench.clouds).
    verify: bool = True
    # The bytes of the last event stream sent (to prove a pass-through byte for byte).
    last_stream: bytes = b""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/anthropic/v1/messages", self.messages)
        app.router.add_post("/anthropic/v1/messages/count_tokens", self.count_native)
        app.router.add_post("/model/{model}/invoke", self.invoke)
        app.router.add_post("/model/{model}/invoke-with-response-stream", self.invoke_stream)
        app.router.add_post("/model/{model}/count-tokens", self.count_invoke)
        app.router.add_get("/logging/modelinvocations", self.logging)
        return app

    # --- authentication -------------------------------------------------------------

    async def _admit(self, request: web.Request, service: str) -> bytes | web.Response:
        body = await request.read()
        access = None
        auth = request.headers.get("Authorization", "")
        ok = auth == f"Bearer {self.api_key}"
        if not ok and not self.verify:
            ok = auth.startswith("AWS4-HMAC-SHA256 Credential=")
        elif not ok:
            access = self._verify(request, body, service)
            ok = access is not None
        if self.record:
            headers = CIMultiDict(request.headers)
            self.seen.append(Seen(request.method, request.path, service, access, headers, body))
        if not ok:
            return aws_error(403, "InvalidSignatureException", "The signature does not match.")
        if self.behaviour.fail is not None:
            status, kind = self.behaviour.fail
            return aws_error(status, kind, self.behaviour.fail_message)
        return body

    def _verify(self, request: web.Request, body: bytes, service: str) -> str | None:
        m = _AUTH.match(request.headers.get("Authorization", ""))
        if m is None:
            return None
        access, _, region, signed_service, signed, signature = m.groups()
        if region != self.region or signed_service != service or access not in self.secrets:
            return None
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names:
            return None
        stamp = request.headers.get("X-Amz-Date", "")
        when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        if abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) > 300:
            return None
        secret, token = self.secrets[access]
        if token is not None and request.headers.get("X-Amz-Security-Token") != token:
            return None
        headers = {n: request.headers.get(n, "") for n in names}
        url = f"http://{request.host}{request.raw_path}"
        req = AWSRequest(method=request.method, url=url, data=body, headers=headers)
        req.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(access, secret, token), service, region)
        expected = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
        return access if hmac.compare_digest(expected, signature) else None

    def _data_service(self) -> str:
        return "bedrock-mantle" if self.mantle else "bedrock"

    # --- the native Messages API ------------------------------------------------------

    async def messages(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request, self._data_service())
        if isinstance(admitted, web.Response):
            return admitted
        doc = json.loads(admitted)
        model = str(doc.get("model"))
        events = self.events(model, len(admitted) // 4)
        if not doc.get("stream"):
            return web.json_response(message_of(events))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for event in events:
            await resp.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        await resp.write_eof()
        return resp

    async def count_native(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request, self._data_service())
        if isinstance(admitted, web.Response):
            return admitted
        return web.json_response({"input_tokens": max(1, len(admitted) // 4)})

    # --- InvokeModel ---------------------------------------------------------------

    async def _invoke_doc(self, request: web.Request) -> dict[str, Any] | web.Response:
        admitted = await self._admit(request, "bedrock")
        if isinstance(admitted, web.Response):
            return admitted
        doc: dict[str, Any] = json.loads(admitted)
        if doc.get("anthropic_version") != "bedrock-2023-05-31" or "model" in doc:
            return aws_error(400, "ValidationException", "Malformed input request.")
        if "stream" in doc:
            return aws_error(400, "ValidationException", "extraneous key [stream]")
        doc["_size"] = len(admitted)
        if self.behaviour.echo_placeholders:
            found = dict.fromkeys(_PLACEHOLDER.findall(admitted.decode()))
            doc["_reply"] = "Reply for " + ", ".join(found) + "."
        return doc

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        doc = await self._invoke_doc(request)
        if isinstance(doc, web.Response):
            return doc
        events = self.events(request.match_info["model"], doc["_size"] // 4, doc.get("_reply"))
        return web.json_response(message_of(events))

    async def invoke_stream(self, request: web.Request) -> web.StreamResponse:
        doc = await self._invoke_doc(request)
        if isinstance(doc, web.Response):
            return doc
        b = self.behaviour
        frames = []
        deltas = 0
        for event in self.events(request.match_info["model"], doc["_size"] // 4, doc.get("_reply")):
            if event["type"] == "content_block_delta":
                if b.exception_after is not None and deltas == b.exception_after[0]:
                    frames.append(exception(b.exception_after[1], b.fail_message))
                    break
                if b.inband_error_after is not None and deltas == b.inband_error_after:
                    err = {"type": "overloaded_error", "message": "Overloaded"}
                    frames.append(chunk({"type": "error", "error": err}))
                    break
                deltas += 1
            frames.append(chunk(event, padding="x" * random.randint(0, 30)))
        resp = web.StreamResponse(
            headers={
                "content-type": "application/vnd.amazon.eventstream",
                "x-amzn-bedrock-content-type": "application/json",
            }
        )
        await resp.prepare(request)
        data = self.last_stream = b"".join(frames)
        if b.split < 0:  # one write per frame, as Bedrock sends them
            for one in frames:
                await resp.write(one)
            await resp.write_eof()
            return resp
        pos = 0
        while pos < len(data):
            step = random.randint(1, b.split) if b.split else len(data)
            await resp.write(data[pos : pos + step])
            pos += step
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    async def count_invoke(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request, "bedrock")
        if isinstance(admitted, web.Response):
            return admitted
        if not self.behaviour.count_tokens_supported:
            message = "The provided model doesn't support counting tokens."
            return aws_error(400, "ValidationException", message)
        inner = base64.b64decode(json.loads(admitted)["input"]["invokeModel"]["body"])
        doc = json.loads(inner)
        if doc.get("anthropic_version") != "bedrock-2023-05-31" or "model" in doc:
            return aws_error(400, "ValidationException", "Malformed input request.")
        return web.json_response({"inputTokens": max(1, len(inner) // 4)})

    # --- the control plane -------------------------------------------------------------

    async def logging(self, request: web.Request) -> web.StreamResponse:
        admitted = await self._admit(request, "bedrock")
        if isinstance(admitted, web.Response):
            return admitted
        if not self.behaviour.logging_on:
            return web.json_response({})
        config = {
            "cloudWatchConfig": {"logGroupName": "bedrock-invocations", "roleArn": "arn:x"},
            "textDataDeliveryEnabled": True,
            "imageDataDeliveryEnabled": False,
            "embeddingDataDeliveryEnabled": False,
        }
        return web.json_response({"loggingConfig": config})

    def events(
        self, model: str, input_tokens: int, echo: str | None = None
    ) -> list[dict[str, Any]]:
        if echo is None:
            return events_for(self.behaviour.reply, model, input_tokens)
        pieces = [echo[i : i + 3] for i in range(0, len(echo), 3)]
        return events_for(echo, model, input_tokens, pieces)


def aws_error(status: int, kind: str, message: str) -> web.Response:
    headers = {"x-amzn-errortype": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return web.json_response({"message": message}, status=status, headers=headers)
