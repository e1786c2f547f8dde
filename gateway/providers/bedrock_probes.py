"""Probes a Bedrock client sends before inference, answered by the gateway itself.

Claude Code in Bedrock mode may send `HEAD /` at start-up and look up inference
profiles (`GET /inference-profiles?type=SYSTEM_DEFINED`, `GET /inference-profiles/{id}`).
Forwarding them would need control-plane permissions the gateway's role should
not have, and would tell the client about profiles it may not use: the answer
lists exactly the ids of the upstream's `models` map.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import orjson

from gateway.errors import NotFound
from gateway.providers.cloud import Local
from gateway.providers.cloud_front import ModelIds
from gateway.providers.cloud_settings import residency_of

_ACCOUNT = "000000000000"  # the gateway does not reveal the upstream's account


def _profile(cloud_id: str, client_id: str, region: str) -> dict[str, Any]:
    foundation = cloud_id.split(".", 1)[1] if residency_of(cloud_id, "") != "" else cloud_id
    return {
        "inferenceProfileId": cloud_id,
        "inferenceProfileName": client_id,
        "inferenceProfileArn": f"arn:aws:bedrock:{region}:{_ACCOUNT}:inference-profile/{cloud_id}",
        "models": [{"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{foundation}"}],
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
    }


def local_answer(method: str, path: str, models: ModelIds, region: str) -> Local | None:
    if method == "HEAD" and path == "/":
        return Local(200, b"")
    if method != "GET" or not path.startswith("/inference-profiles"):
        return None
    profiles = {
        cloud: _profile(cloud, models.client_id(cloud), region) for cloud in models.cloud_ids()
    }
    if path == "/inference-profiles":
        return Local(200, orjson.dumps({"inferenceProfileSummaries": list(profiles.values())}))
    wanted = unquote(path[len("/inference-profiles/") :])
    if wanted not in profiles:
        raise NotFound("No such inference profile on this upstream.")
    return Local(200, orjson.dumps(profiles[wanted]))
