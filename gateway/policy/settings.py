"""`policy:` config section: the ZDR policy's knobs.

The rules themselves are code (gateway/policy/rules.py), each naming the provider
documentation it rests on; config can only widen them for a named team, and every
such widening is recorded in the audit trail as `override:<rule>`.
"""

from __future__ import annotations

import fnmatch
from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.policy.rules import BY_ID
from gateway.settings_base import Section

# anthropic-beta values known not to create retention at the provider. Globs.
DEFAULT_BETAS = (
    "prompt-caching-*",
    "token-efficient-tools-*",
    "fine-grained-tool-streaming-*",
    "interleaved-thinking-*",
    "output-128k-*",
    "context-1m-*",
    "context-management-*",
    "effort-*",
    "structured-outputs-*",
)
# Betas that a table rule refuses: allowing them here would be silently ineffective.
_RETENTION_BETAS = ("files-api-*", "code-execution-*", "mcp-client-*", "skills-*")


class BetaPolicy(Section):
    # anthropic-beta values (globs) the gateway forwards.
    allow: list[str] = Field(default_factory=lambda: list(DEFAULT_BETAS))
    # What happens to a beta value on no list: refuse (strict default) or allow.
    unlisted: Literal["refuse", "allow"] = "refuse"

    @field_validator("allow")
    @classmethod
    def _no_retention_betas(cls, v: list[str]) -> list[str]:
        for pattern in v:
            for bad in _RETENTION_BETAS:
                probe = bad.replace("*", "2025-01-01")
                if fnmatch.fnmatchcase(probe, pattern):
                    raise ValueError(
                        f"{pattern!r} would allow a beta that creates retention "
                        "(files-api, code-execution, mcp-client, skills); allow its rule "
                        "for a team under policy.teams.<team>.allow instead"
                    )
        return v


class TeamPolicy(Section):
    # Rule ids (see /zdr/posture or gateway/policy/rules.py) this team is exempt from.
    allow: list[str] = []

    @field_validator("allow")
    @classmethod
    def _known_rules(cls, v: list[str]) -> list[str]:
        unknown = [r for r in v if r not in BY_ID]
        if unknown:
            raise ValueError(f"unknown rule id(s) {unknown}; known: {sorted(BY_ID)}")
        return v


class PolicySettings(Section):
    betas: BetaPolicy = BetaPolicy()
    # A cloud target whose account logs model invocations (Bedrock writes prompts and
    # completions to CloudWatch/S3): refused (503) unless `allow`. `provider_logging_unknown`:
    # the same for a target whose setting could not be read (no permission, unreachable).
    provider_logging: Literal["refuse", "allow"] = "refuse"
    provider_logging_unknown: Literal["refuse", "allow"] = "allow"
    # Per-team exemptions, e.g. {sandbox: {allow: [anthropic.code_execution]}}.
    teams: dict[str, TeamPolicy] = {}

    @model_validator(mode="after")
    def _team_names(self) -> PolicySettings:
        for team in self.teams:
            if not team or len(team) > 64:
                raise ValueError("team names must be 1-64 characters")
        return self

    def exempt(self, team: str | None) -> frozenset[str]:
        if team is None or team not in self.teams:
            return frozenset()
        return frozenset(self.teams[team].allow)
