"""Claude on Google Vertex AI behind the Anthropic API (`provider: vertex`).

- URL: `{origin}/v1/projects/{project}/locations/{region}/publishers/anthropic/models/
  {model}:rawPredict` (`:streamRawPredict` when streaming); the origin by region:
  `global` → aiplatform.googleapis.com, `us`/`eu` → aiplatform.{us|eu}.rep.googleapis.com,
  else {region}-aiplatform.googleapis.com (cloud_settings.vertex_origin).
- Body: `model` out (it is in the URL), `anthropic_version: vertex-2023-10-16` set by the
  gateway; betas stay in the `anthropic-beta` header (Vertex validates them).
- count_tokens: `.../models/count-tokens:rawPredict`, the (mapped) model kept in the body.
- The answer, SSE included, is Anthropic's: passed through. Errors in Google's envelope
  (`[{"error":{"code":429,"status":"RESOURCE_EXHAUSTED",…}}]`) become Anthropic's shape.

Cloud-native clients (`AnthropicVertex`, Claude Code with CLAUDE_CODE_USE_VERTEX) call the
publisher-model paths themselves; the project and region are the gateway's, not theirs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from gateway.errors import NotFound
from gateway.observe.metrics import Metrics
from gateway.providers.cloud import Call, CloudAdapter, Exchange, UpstreamResponse, WholeBody
from gateway.providers.cloud_errors import anthropic_error, google_error
from gateway.providers.cloud_front import ModelIds, model_list_answer, vertex_model
from gateway.providers.cloud_settings import VertexSettings
from gateway.providers.gcp_auth import GoogleToken
from gateway.routing.settings import TargetSettings

VERSION = "vertex-2023-10-16"
# Vertex takes the version in the body; the rest of Anthropic's headers pass.
_DROPPED = frozenset({"content-type", "anthropic-version"})


class VertexAdapter(CloudAdapter):
    name = "vertex"

    def __init__(
        self, settings: TargetSettings, metrics: Metrics | None = None, upstream: str = ""
    ) -> None:
        assert settings.vertex is not None
        self.settings: VertexSettings = settings.vertex
        self._base = urlsplit(settings.origin).path.rstrip("/")
        self.models = ModelIds(self.settings.models)
        s = self.settings
        self._models_path = (
            f"/v1/projects/{s.project}/locations/{s.region}/publishers/anthropic/models"
        )
        self.token = GoogleToken(s.credentials_file, s.refresh_ahead_seconds)

    async def start(self) -> None:
        await self.token.start()

    async def close(self) -> None:
        await self.token.close()

    def posture(self) -> dict[str, Any]:
        return {"project": self.settings.project, "region": self.settings.region}

    def path_model(self, path: str) -> tuple[str | None, bool]:
        model, specifier = vertex_model(path)
        if model is None or model == "count-tokens":
            return None, False
        return self.models.client_id(model), specifier == "streamRawPredict"

    def prepare(self, call: Call) -> Exchange:
        if call.kind == "models":
            local = model_list_answer(call.path, self.models)
            if local is not None:
                return Exchange(local=local)
        if call.json is None or call.kind not in ("messages", "count_tokens"):
            raise NotFound("This endpoint is not offered by the Vertex AI upstream.")
        path_model, _ = vertex_model(call.path)
        body = {k: v for k, v in call.json.items() if k != "anthropic_version"}
        body["anthropic_version"] = VERSION
        if call.kind == "count_tokens":
            model = body.get("model")
            body["model"] = self.models.cloud_id(model if isinstance(model, str) else "")
            target = f"{self._models_path}/count-tokens:rawPredict"
        else:
            model = path_model if path_model is not None else body.pop("model", None)
            body.pop("model", None)
            cloud_id = self.models.cloud_id(model if isinstance(model, str) else "")
            specifier = "streamRawPredict" if call.stream else "rawPredict"
            target = f"{self._models_path}/{quote(cloud_id, safe='@')}:{specifier}"
        headers = [(k, v) for k, v in call.headers.items() if k.lower() not in _DROPPED]
        headers.append(("content-type", "application/json"))
        headers.append(("authorization", self.token.authorization()))
        return VertexExchange("POST", self._base + target, headers, orjson.dumps(body))


class VertexExchange(Exchange):
    async def response(self, resp: UpstreamResponse) -> UpstreamResponse:
        if resp.status < 400:
            return resp
        body = await WholeBody.read(resp)
        mapped = google_error(resp.status, body)
        if isinstance(mapped, bytes):  # already Anthropic's shape (the model's own error)
            return WholeBody(resp, resp.status, mapped)
        return WholeBody(resp, mapped[0], anthropic_error(mapped[1], mapped[2]))
