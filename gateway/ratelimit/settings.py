"""`ratelimit:` config section.

Limits per minute refill smoothly (a token bucket: capacity `burst` times the
per-minute limit, refilled continuously at the per-minute rate). A key's own
limits come from its claims; `defaults` fill in what a key does not carry.
Team limits are a second, shared bucket for all keys of the team.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.settings_base import Section

LimitName = Literal["rpm", "input_tpm", "output_tpm", "concurrency"]


class LimitSpec(Section):
    # None = no limit of this kind.
    rpm: int | None = Field(default=None, gt=0)
    input_tpm: int | None = Field(default=None, gt=0)
    output_tpm: int | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, gt=0)
    # Limits listed here are evaluated and counted but never refuse (rolling out a new limit).
    shadow: list[LimitName] = []
    # Overrides `ratelimit.burst` for these limits.
    burst: float | None = Field(default=None, ge=1.0, le=60.0)


class RateLimitSettings(Section):
    # false: nothing is limited, and the provider's own (organisation-wide) rate-limit
    # headers reach clients unchanged.
    enabled: bool = True
    backend: Literal["memory", "redis"] = "memory"
    # redis://[user:password@]host:port/db or rediss:// (TLS). Required for `backend: redis`.
    redis_url: str | None = None
    # What happens when Redis cannot be reached. No default for Redis: an explicit choice.
    #   fail_closed: refuse limited requests with 503;
    #   fail_open:   admit them unchecked (counted as outcome="error"); never per-pod counting.
    failure_mode: Literal["fail_open", "fail_closed"] | None = None
    # /readyz always reports a failing Redis; true also makes it answer 503 under
    # fail_closed. Only useful when another pool with its own Redis can take the traffic
    # (e.g. one Redis per zone): with one shared Redis every replica would drop out together.
    unready_on_redis_failure: bool = False
    # Prefix of every Redis key (several gateways may share one Redis with different prefixes).
    redis_key_prefix: str = Field(default="zdr:rl", pattern=r"^[A-Za-z0-9:_.-]{1,32}$")
    # A Redis round trip slower than this counts as a failure (the request must not hang).
    redis_timeout_seconds: float = Field(default=0.5, gt=0, le=30)
    redis_max_connections: int = Field(default=64, gt=0, le=10000)
    # How often Redis health is probed (readiness recovers without traffic).
    health_interval_seconds: float = Field(default=2.0, gt=0, le=300)
    # Bucket capacity as a multiple of the per-minute limit (1.0 = one minute's worth at once).
    burst: float = Field(default=1.0, ge=1.0, le=60.0)
    # A concurrency slot whose replica died is freed after this long; keep it above the
    # longest request (upstream `timeouts.total`).
    concurrency_lease_seconds: float = Field(default=960.0, gt=0, le=24 * 3600)
    # Per key, for what a key's own claims leave unset.
    defaults: LimitSpec = LimitSpec()
    # Per team (shared by every key of the team); teams not listed use `team_default`.
    teams: dict[str, LimitSpec] = {}
    team_default: LimitSpec = LimitSpec()

    @model_validator(mode="after")
    def _redis_choices(self) -> RateLimitSettings:
        if self.backend == "redis":
            if not self.redis_url:
                raise ValueError("`redis_url` is required with `backend: redis`")
            if self.failure_mode is None:
                raise ValueError(
                    "`failure_mode` is required with `backend: redis`: "
                    "fail_closed (refuse with 503) or fail_open (admit unlimited)"
                )
        return self

    @property
    def fail_open(self) -> bool:
        return self.failure_mode == "fail_open"
