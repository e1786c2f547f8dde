"""Config of an upstream's pool: its targets, retries, circuit breaker and retry budget.

An upstream is a pool of targets. `upstreams[].targets` lists them; an upstream
with a single `url`/`api_key` (the original form) is a pool of one target named
after the upstream. Everything here is validated at load, with the path in the file.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from gateway.settings_base import Section

# Target names are metric label values and appear in /readyz and /zdr/posture.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
# Label names and values: short, label-safe, so they can sit in a key's claims.
_LABEL = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_LABELS = 16


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    for k, v in labels.items():
        if not _LABEL.match(k) or not _LABEL.match(v):
            raise ValueError("label names and values: letters, digits, '.', '_', '-' (<= 64)")
    return labels


def check_url(v: str) -> str:
    if not re.match(r"^https?://[^/\s]+(/[^\s]*)?$", v):
        raise ValueError("expected an http(s) URL such as https://api.anthropic.com")
    return v.rstrip("/")


def check_secret_line(v: str) -> str:
    # SECURITY: it is sent as a header value; a CR or LF would end the header there
    # (the usual cause: a trailing newline in the secret file behind ${VAR}).
    if any(c in v for c in "\r\n\x00"):
        raise ValueError("must be one line: no CR, LF or NUL (a trailing newline?)")
    return v


class TargetSettings(Section):
    name: str = Field(pattern=NAME_PATTERN)
    url: str
    api_key: str = Field(min_length=1)
    ca_file: str | None = None
    # Share of traffic among the eligible targets of the same priority.
    weight: int = Field(default=1, ge=1, le=1000)
    # Lower is preferred: a higher priority gets traffic only when every target of a
    # lower one is unavailable (breaker open, backing off, or excluded by labels).
    priority: int = Field(default=0, ge=0, le=100)
    # Matched by team and key restrictions, e.g. {region: eu, zdr: "true"}.
    labels: dict[str, str] = {}

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(v)

    @field_validator("api_key")
    @classmethod
    def _one_line(cls, v: str) -> str:
        return check_secret_line(v)

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        return check_labels(v)


class RetrySettings(Section):
    """Retries happen only before the first response byte has gone to the client."""

    # Attempts per request, the first included (1 = never retry).
    max_attempts: int = Field(default=2, ge=1, le=10)
    # Upstream statuses retried (on another target when there is one).
    statuses: list[int] = [429, 502, 503, 529]
    # A `retry-after` up to this long is waited out before retrying the same target;
    # a longer one is not retried on it (the answer goes to the client as it is).
    max_retry_after_seconds: float = Field(default=2.0, ge=0, le=60)
    # Pause before retrying the same target when the upstream gave no retry-after.
    backoff_seconds: float = Field(default=0.05, ge=0, le=10)

    @field_validator("statuses")
    @classmethod
    def _statuses(cls, v: list[int]) -> list[int]:
        if any(not 400 <= s <= 599 for s in v):
            raise ValueError("statuses must be HTTP error codes (400-599)")
        return v


class BreakerSettings(Section):
    """Per-target circuit breaker: open on failures, cool down, probe once, close."""

    enabled: bool = True
    # Opens after this many failed attempts in a row...
    consecutive_failures: int = Field(default=5, ge=1, le=1000)
    # ...or when this share of the last `window_requests` attempts failed, once at
    # least `min_requests` of them were seen.
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    min_requests: int = Field(default=20, ge=1, le=10000)
    window_requests: int = Field(default=100, ge=1, le=10000)
    # Open this long, then one probe request is let through (half-open).
    cooldown_seconds: float = Field(default=10.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _window(self) -> BreakerSettings:
        if self.min_requests > self.window_requests:
            raise ValueError("min_requests cannot exceed window_requests")
        return self


class BudgetSettings(Section):
    """Retries across requests stay within `ratio` of the requests in a sliding window."""

    ratio: float = Field(default=0.2, ge=0, le=10)
    window_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Retries always allowed per window, so a quiet upstream can still retry at all
    # (Finagle's default is 10 per second; an outage at low traffic is not a load problem).
    min_retries: int = Field(default=10, ge=0, le=10000)


class TeamRouting(Section):
    # The team's requests go only to targets carrying every one of these labels.
    labels: dict[str, str] = {}

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        return check_labels(v)
