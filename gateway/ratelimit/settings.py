"""`ratelimit:` config section."""

from __future__ import annotations

from typing import Literal

from gateway.settings_base import Section


class RateLimitSettings(Section):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None
