"""Config of the cloud upstreams (`provider: bedrock` / `provider: vertex`), validated at load.

Pure pydantic, no cloud SDK: `check-config` and a gateway without a cloud
upstream never import botocore or google-auth.

Model ids map by config from the Anthropic ids clients send to the cloud's ids.
On Bedrock a `us.`/`eu.`/`apac.` inference profile keeps processing in that
geography and `global.` may route anywhere; a plain `anthropic.` id runs in
the target's own region. `residency_of` names the geography, so that a
`region` label on the upstream (the residency label keys and teams are held
to) is checked against every mapped id at load: an `eu` upstream cannot map a
model to a `global.` profile.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from gateway.settings_base import Section

_REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"
_GEO_PREFIXES = ("us", "eu", "apac", "ca", "jp", "au", "us-gov", "global")
# A model id as the clouds spell them (`eu.anthropic.claude-…-v1:0`, `claude-…@2025…`).
MODEL_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"


def geography_of_region(region: str) -> str:
    """`eu-central-1` → `eu`, `ap-southeast-2` → `apac`, `us-east-1` → `us`; Vertex `europe-west4`
    → `eu`, `us-central1` → `us`; the multi-regions `eu`/`us` are themselves; `global`."""
    head = region.split("-", 1)[0]
    return {"ap": "apac", "asia": "apac", "europe": "eu", "northamerica": "us"}.get(head, head)


def residency_of(model_id: str, region: str) -> str:
    """Where a request to `model_id` may be processed: a profile's geography, else the region's."""
    prefix = model_id.split(".", 1)[0] if "." in model_id else ""
    if prefix in _GEO_PREFIXES:
        return prefix
    return geography_of_region(region)


def check_residency(models: dict[str, str], region: str, label: str | None) -> None:
    """Raise when a mapped model could be processed outside the upstream's `region` label."""
    if label is None:
        return
    for source, target in models.items():
        where = residency_of(target, region)
        if where != label:
            raise ValueError(
                f"labels.region is {label!r} but models[{source!r}] is processed in {where!r}: "
                f"use a {label}. inference profile or an in-region id"
            )


class ModelMap(Section):
    """Anthropic model id → the cloud's id. A cloud-native client names the cloud id itself;
    only ids listed here (either side) are served, so no client picks an unlisted profile."""

    models: dict[str, str] = Field(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _ids(cls, v: dict[str, str]) -> dict[str, str]:
        for name, target in v.items():
            if not re.match(MODEL_ID, name) or not re.match(MODEL_ID, target):
                raise ValueError("model ids are letters, digits and . _ : @ - (at most 128)")
        return v


class BedrockSettings(ModelMap):
    region: str = Field(pattern=_REGION)
    # mantle: bedrock-mantle.{region}.api.aws/anthropic/v1/messages (SigV4 `bedrock-mantle`);
    # runtime: bedrock-runtime.{region}.amazonaws.com/anthropic/v1/messages (SigV4 `bedrock`);
    # invoke: bedrock-runtime /model/{id}/invoke[-with-response-stream], body translated.
    mode: Literal["mantle", "runtime", "invoke"] = "mantle"
    # sigv4: botocore's credential chain; api_key: the upstream's api_key (a Bedrock API
    # key, e.g. ${AWS_BEARER_TOKEN_BEDROCK}) as Bearer. Default: api_key when one is set.
    auth: Literal["sigv4", "api_key"] | None = None
    # A named profile of the shared AWS config/credentials files (else the default chain).
    profile: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.+=,@-]{1,64}$")
    # How often credentials are re-read off the event loop; botocore refreshes them
    # itself when they are within 15 minutes of expiry, so this only needs to be shorter.
    refresh_seconds: float = Field(default=60.0, gt=0, le=900)
    # Read the account's invocation logging setting (GetModelInvocationLoggingConfiguration).
    check_invocation_logging: bool = True
    # The control plane (`bedrock.{region}.amazonaws.com`); set for a stand-in or VPC endpoint.
    control_url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+$")
    invocation_logging_check_seconds: float = Field(default=3600.0, ge=10, le=86400)


class VertexSettings(ModelMap):
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,61}[a-z0-9]$")
    # A region (`europe-west4`), or the multi-regions `global`, `us`, `eu`.
    region: str = Field(pattern=r"^(global|us|eu|[a-z]+-[a-z]+\d+)$")
    # A service-account JSON key file; else google.auth.default() (GOOGLE_APPLICATION_CREDENTIALS,
    # gcloud's application default credentials, the GKE metadata server).
    credentials_file: str | None = None
    # Refresh the token this long before it expires (tokens last 3600 s).
    refresh_ahead_seconds: float = Field(default=300.0, ge=1, le=3000)


def vertex_origin(region: str) -> str:
    if region == "global":
        return "https://aiplatform.googleapis.com"
    if region in ("us", "eu"):
        return f"https://aiplatform.{region}.rep.googleapis.com"
    return f"https://{region}-aiplatform.googleapis.com"


def bedrock_origin(settings: BedrockSettings) -> str:
    if settings.mode == "mantle":
        return f"https://bedrock-mantle.{settings.region}.api.aws"
    return f"https://bedrock-runtime.{settings.region}.amazonaws.com"
