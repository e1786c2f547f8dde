"""The client side of a cloud upstream: Anthropic's API plus the cloud's own paths.

A cloud upstream speaks Anthropic's API to its clients, so its provider adapter is
Anthropic's (same headers, error shape, usage reader, and the same ZDR policy,
applied before any translation), extended with the paths cloud-native clients call:

- Bedrock (`AnthropicBedrock`, Claude Code with CLAUDE_CODE_USE_BEDROCK):
  `POST /model/{id}/invoke`, `/invoke-with-response-stream`, `/count-tokens`, and
  the probes `HEAD /`, `GET /inference-profiles`, `GET /inference-profiles/{id}`
  (answered by the gateway itself).
- Both: `GET /v1/models` and `/v1/models/{id}`, answered from the upstream's `models`
  map (`model_list_answer`): the clouds have no Anthropic model list.
- Vertex (`AnthropicVertex`, Claude Code with CLAUDE_CODE_USE_VERTEX):
  `POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{m}:rawPredict`,
  `:streamRawPredict`, and `.../models/count-tokens:rawPredict`.

No cloud SDK here: the front is built for every configured upstream.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import orjson

from gateway.errors import NotFound
from gateway.providers.anthropic import COUNT_TOKENS, MESSAGES, Anthropic
from gateway.providers.base import Endpoint, valid_model_id
from gateway.providers.cloud import Local

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

    def client_ids(self) -> list[str]:
        return sorted(self._to_cloud)


# A cloud has no Anthropic model list; its entries carry no date the gateway knows.
_CREATED = "1970-01-01T00:00:00Z"


def model_list_answer(path: str, models: ModelIds) -> Local | None:
    """`GET /v1/models` and `/v1/models/{id}` of a cloud upstream, answered by the gateway
    from the upstream's `models` map in Anthropic's shape (what the SDKs' `models.list()`
    and Claude Code's gateway model discovery read); None for any other path."""
    if path == "/v1/models":
        ids = models.client_ids()
        data = [_model(i) for i in ids]
        first, last = (ids[0], ids[-1]) if ids else (None, None)
        page = {"data": data, "has_more": False, "first_id": first, "last_id": last}
        return Local(200, orjson.dumps(page))
    if path.startswith("/v1/models/"):
        wanted = unquote(path[len("/v1/models/") :])
        models.cloud_id(wanted)  # NotFound unless listed (by its client or its cloud id)
        return Local(200, orjson.dumps(_model(models.client_id(wanted))))
    return None


def _model(model_id: str) -> dict[str, str]:
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": _CREATED}


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
