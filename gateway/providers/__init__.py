"""Provider adapters: one per model API, behind one small interface."""

from __future__ import annotations

from gateway.providers.anthropic import Anthropic
from gateway.providers.base import Endpoint, Provider
from gateway.providers.cloud_front import BedrockFront, VertexFront
from gateway.providers.openai import OpenAI

# By `provider:` in the config. A cloud upstream's clients speak Anthropic's API (plus the
# cloud's own paths); its cloud adapter (gateway/providers/cloud.py) is built by Upstream.
PROVIDERS: dict[str, Provider] = {
    "anthropic": Anthropic(),
    "openai": OpenAI(),
    "bedrock": BedrockFront(),
    "vertex": VertexFront(),
}

__all__ = ["PROVIDERS", "Endpoint", "Provider"]
