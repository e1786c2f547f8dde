"""`pii:` config section: which personal data is replaced before a request leaves.

    pii:
      default: {email: pseudonymise, phone: pseudonymise, card: mask, iban: pseudonymise}
      teams:
        research: {email: off}      # a team's entries override the default's, one by one
        sandbox: off                # every category off: that team's requests cost nothing
      phone_regions: [US, GB]       # region for numbers written without +country code
      national_ids: [us.ssn, gb.nino]
      terms: {client: [Acme Corp, Globex]}     # -> [CLIENT_1]
      patterns: {employee_id: 'EMP-[0-9]{6}'}  # -> [EMPLOYEE_ID_1]
      system_hint: false

Everything is checked at load (regions, national id names, regexes compile, term lists
bounded), so a request never meets a bad setting. Absent section = everything off.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from gateway.pii.national import NATIONAL_IDS
from gateway.settings_base import Section

Mode = Literal["pseudonymise", "mask", "block", "off"]
CATEGORIES = ("email", "phone", "card", "iban", "national_id", "ip", "terms", "patterns")
_LABEL = re.compile(r"^[a-z][a-z0-9_]{0,23}$")
# Labels the built-in categories use: a term list or pattern must not reuse one.
_BUILTIN_LABELS = frozenset({"email", "phone", "card", "iban", "national_id", "ip"})


def _yaml_off(value: Any) -> Any:
    """YAML 1.1 reads a bare `off` as false; here it means the mode `off`."""
    if value is False:
        return "off"
    if isinstance(value, dict):
        return {k: "off" if v is False else v for k, v in value.items()}
    return value


class _Modes(Section):
    @model_validator(mode="before")
    @classmethod
    def _off(cls, data: Any) -> Any:
        return _yaml_off(data)


class TeamModes(_Modes):
    """A team's modes; a category left out takes the default's mode."""

    email: Mode | None = None
    phone: Mode | None = None
    card: Mode | None = None
    iban: Mode | None = None
    national_id: Mode | None = None
    ip: Mode | None = None
    terms: Mode | None = None
    patterns: Mode | None = None


class DefaultModes(_Modes):
    email: Mode = "off"
    phone: Mode = "off"
    card: Mode = "off"
    iban: Mode = "off"
    national_id: Mode = "off"
    ip: Mode = "off"
    terms: Mode = "off"
    patterns: Mode = "off"


class PiiSettings(Section):
    default: DefaultModes = DefaultModes()
    teams: dict[str, TeamModes | Literal["off"]] = {}
    phone_regions: list[str] = Field(default_factory=lambda: ["US"], max_length=32)
    national_ids: list[str] = Field(default=[], max_length=32)
    terms: dict[str, list[str]] = {}
    patterns: dict[str, str] = {}
    # One line added to the system prompt asking the model to keep placeholders as written.
    system_hint: bool = False

    @field_validator("teams", mode="before")
    @classmethod
    def _teams_off(cls, v: Any) -> Any:
        return _yaml_off(v)

    @field_validator("phone_regions")
    @classmethod
    def _regions(cls, v: list[str]) -> list[str]:
        bad = [r for r in v if not re.fullmatch(r"[A-Z]{2}", r)]
        if bad:
            raise ValueError(f"regions are two upper-case letters (ISO 3166), got {bad}")
        return v

    @field_validator("national_ids")
    @classmethod
    def _national(cls, v: list[str]) -> list[str]:
        unknown = [n for n in v if n not in NATIONAL_IDS]
        if unknown:
            raise ValueError(f"unknown national id(s) {unknown}; known: {sorted(NATIONAL_IDS)}")
        return v

    @field_validator("terms")
    @classmethod
    def _terms(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        total = 0
        for label, words in v.items():
            _check_label(label)
            for word in words:
                if not 2 <= len(word.strip()) <= 200 or word != word.strip():
                    # The term itself is configuration, but it may be a client name:
                    # the message names the list, not the word.
                    raise ValueError(f"terms.{label}: each term is 2-200 characters, trimmed")
            total += len(words)
        if total > 200_000:
            raise ValueError("at most 200000 terms in all")
        return v

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, v: dict[str, str]) -> dict[str, str]:
        for label, pattern in v.items():
            _check_label(label)
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"patterns.{label}: not a valid regular expression: {exc}"
                ) from None
            if compiled.match(""):
                raise ValueError(f"patterns.{label}: matches the empty string")
        return v

    @model_validator(mode="after")
    def _labels_unique(self) -> PiiSettings:
        clash = set(self.terms) & set(self.patterns)
        if clash:
            raise ValueError(f"a label is used by both terms and patterns: {sorted(clash)}")
        for team in self.teams:
            if not team or len(team) > 64:
                raise ValueError("team names must be 1-64 characters")
        return self

    def modes(self, team: str | None) -> dict[str, Mode]:
        """The effective mode per category for a team (the default's where unset)."""
        base: dict[str, Mode] = self.default.model_dump()
        entry = self.teams.get(team) if team is not None else None
        if entry == "off":
            return dict.fromkeys(CATEGORIES, "off")
        if isinstance(entry, TeamModes):
            base.update({k: m for k, m in entry.model_dump().items() if m is not None})
        return base

    @property
    def enabled(self) -> bool:
        """Whether any team (or the default) has any category on."""
        teams = [t for t in self.teams if t]
        return any(m != "off" for team in [None, *teams] for m in self.modes(team).values())


def _check_label(label: str) -> None:
    if not _LABEL.match(label) or label in _BUILTIN_LABELS:
        raise ValueError(
            f"label {label!r}: lower-case letters, digits, _ (up to 24), "
            "not a built-in category name"
        )
