"""Provider adapters: one per model API, behind one small interface."""

from __future__ import annotations

from gateway.providers.anthropic import Anthropic
from gateway.providers.base import Endpoint, Provider
from gateway.providers.openai import OpenAI

PROVIDERS: dict[str, Provider] = {"anthropic": Anthropic(), "openai": OpenAI()}

__all__ = ["PROVIDERS", "Endpoint", "Provider"]
