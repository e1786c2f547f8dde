"""The client side of a cloud upstream: Anthropic's API plus the cloud's own paths.

A cloud upstream speaks Anthropic's API to its clients, so its provider adapter is
Anthropic's (same headers, error shape, usage reader, and the same ZDR policy,
applied before any translation), extended with the paths cloud-native clients call:

- Bedrock (`AnthropicBedrock`, Claude Code with CLAUDE_CODE_USE_BEDROCK):
  `POST /model/{id}/invoke`, `/invoke-with-response-stream`, `/count-tokens`, and
  the probes `HEAD /`, `GET /inference-profiles`, `GET /inference-profiles/{id}`
  (answered by the gateway itself).
- Vertex (`AnthropicVertex`, Claude Code with CLAUDE_CODE_USE_VERTEX):
  `POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{m}:rawPredict`,
  `:streamRawPredict`, and `.../models/count-tokens:rawPredict`.

No cloud SDK here: the front is built for every configured upstream.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from gateway.errors import NotFound
from gateway.providers.anthropic import COUNT_TOKENS, MESSAGES, Anthropic
from gateway.providers.base import Endpoint, valid_model_id

BETA_HEADER = "anthropic-beta"
PROBE = Endpoint("models", "GET", zdr_eligible=True, json_body=False)
HEAD_PROBE = Endpoint("models", "HEAD", zdr_eligible=True, json_body=False)
_BEDROCK_ACTIONS = {
    "invoke": MESSAGES,
    "invoke-with-response-stream": MESSAGES,
    "count-tokens": COUNT_TOKENS,
}
_VERTEX = re.compile(
    r"^/v1/projects/[a-z][a-z0-9-]{4,61}[a-z0-9]/locations/[a-z0-9-]{2,40}"
    r"/publishers/anthropic/models/([A-Za-z0-9._@-]{1,128}):(rawPredict|streamRawPredict)$"
)


def native_model(path: str) -> tuple[str | None, str]:
    """`/model/{id}/{action}` → (the id, URL-decoded and checked, action); else (None, "")."""
    parts = path.split("/")
    if len(parts) != 4 or parts[1] != "model" or parts[3] not in _BEDROCK_ACTIONS:
        return None, ""
    model = unquote(parts[2])
    return (model, parts[3]) if valid_model_id(model) else (None, "")


def vertex_model(path: str) -> tuple[str | None, str]:
    """A Vertex publisher-model path → (model or `count-tokens`, specifier); else (None, "")."""
    m = _VERTEX.match(path)
    return (m.group(1), m.group(2)) if m else (None, "")


class ModelIds:
    """The config's model map, both ways. Only listed ids are served (SECURITY: a client
    cannot pick a cloud id, e.g. a `global.` profile, the operator did not list)."""

    def __init__(self, models: dict[str, str]) -> None:
        self._to_cloud = dict(models)
        self._to_client = {v: k for k, v in models.items()}

    def cloud_id(self, model: str) -> str:
        if model in self._to_cloud:
            return self._to_cloud[model]
        if model in self._to_client:
            return model
        # The model name is client text: not echoed.
        raise NotFound("The requested model is not offered by this upstream (see its `models`).")

    def client_id(self, cloud_id: str) -> str:
        return self._to_client.get(cloud_id, cloud_id)

    def cloud_ids(self) -> list[str]:
        return sorted(self._to_client)


class BedrockFront(Anthropic):
    def match(self, method: str, path: str) -> tuple[Endpoint, str] | None:
        if path in ("", "/") and method == "HEAD":
            return HEAD_PROBE, "/"
        if path == "/inference-profiles" or path.startswith("/inference-profiles/"):
            return PROBE, path
        model, action = native_model(path)
        if model is not None:
            return _BEDROCK_ACTIONS[action], path
        return super().match(method, path)


class VertexFront(Anthropic):
    def match(self, method: str, path: str) -> tuple[Endpoint, str] | None:
        model, _ = vertex_model(path)
        if model is not None:
            return (COUNT_TOKENS if model == "count-tokens" else MESSAGES), path
        return super().match(method, path)
