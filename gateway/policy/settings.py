"""`policy:` config section: the ZDR policy's knobs.

The rules themselves are code (gateway/policy/rules.py, the catalogue in
gateway/policy/catalogue.py), each naming the provider documentation it rests
on. Config can: turn a qualified feature on or off (`qualified`), choose what
happens to values the catalogue does not list (`betas.unlisted`,
`tools.unlisted`), add values known to be eligible (`betas.allow`,
`tools.allow`), and widen the rules for a named team (`teams`), each such
widening recorded in the audit trail as `override:<rule>`. docs/policy.md
explains the defaults.
"""

from __future__ import annotations

import fnmatch
import re
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.policy import catalogue
from gateway.policy.rules import BY_ID
from gateway.settings_base import Section

Mode = Literal["allow", "refuse"]
# Features that are ZDR-eligible with a retained artifact, and their default. Structured
# outputs retain a schema (not a prompt or an answer) and are eligible in Anthropic's
# table; Claude Code uses them: allowed. Dynamic filtering is outside the table's "web
# search and web fetch (except dynamic filtering)": refused.
QUALIFIED: dict[str, Mode] = {
    "anthropic.structured_outputs": "allow",
    "anthropic.web_dynamic_filtering": "refuse",
}
# Probes for each refused beta family: an `allow` glob matching one would be ineffective.
_REFUSED_BETAS = tuple(f"{e.name}-2025-01-01" for e in catalogue.BETAS if e.cls == "refused")
_REFUSED_TOOLS = tuple(f"{e.name}_20250101" for e in catalogue.TOOLS if e.cls == "refused")


def _refused_glob(patterns: list[str], probes: tuple[str, ...], what: str) -> list[str]:
    for pattern in patterns:
        for probe in probes:
            if fnmatch.fnmatchcase(probe, pattern):
                raise ValueError(
                    f"{pattern!r} would allow {what} that enables a feature that is not "
                    "ZDR-eligible; exempt a team from its rule under "
                    "policy.teams.<team>.allow instead"
                )
    return patterns


class BetaPolicy(Section):
    # anthropic-beta values (globs) the operator knows to be eligible, beyond the catalogue.
    allow: list[str] = []
    # A value in neither: forwarded, counted and marked in the audit event (allow, the
    # default: Claude Code's next release adds betas), or refused (refuse: strict mode).
    unlisted: Mode = "allow"

    @field_validator("allow")
    @classmethod
    def _no_refused(cls, v: list[str]) -> list[str]:
        return _refused_glob(v, _REFUSED_BETAS, "a beta")


class ToolPolicy(Section):
    # tools[].type values (globs) the operator knows to be eligible, beyond the catalogue.
    allow: list[str] = []
    # A typed tool in neither: as for betas.
    unlisted: Mode = "allow"

    @field_validator("allow")
    @classmethod
    def _no_refused(cls, v: list[str]) -> list[str]:
        return _refused_glob(v, _REFUSED_TOOLS, "a tool type")


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
    tools: ToolPolicy = ToolPolicy()
    # Qualified features on (allow) or off (refuse), by rule id.
    qualified: dict[str, Mode] = Field(default_factory=lambda: dict(QUALIFIED))
    # Per-team exemptions, e.g. {sandbox: {allow: [anthropic.code_execution]}}.
    teams: dict[str, TeamPolicy] = {}

    @field_validator("qualified")
    @classmethod
    def _known_qualified(cls, v: dict[str, Mode]) -> dict[str, Mode]:
        unknown = sorted(set(v) - set(QUALIFIED))
        if unknown:
            raise ValueError(f"unknown qualified rule(s) {unknown}; known: {sorted(QUALIFIED)}")
        return {**QUALIFIED, **v}

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

    @cached_property
    def allowed_qualified(self) -> frozenset[str]:
        return frozenset(r for r, mode in self.qualified.items() if mode == "allow")

    @cached_property
    def extra_betas(self) -> re.Pattern[str] | None:
        return _any_of(self.betas.allow)

    @cached_property
    def extra_tools(self) -> re.Pattern[str] | None:
        return _any_of(self.tools.allow)


def _any_of(patterns: list[str]) -> re.Pattern[str] | None:
    """One compiled regex matching when any glob does (fnmatch.translate anchors each)."""
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None
