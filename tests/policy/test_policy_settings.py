"""`policy:` section validation: bad values are refused at load, with the path."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.policy.settings import DEFAULT_BETAS, PolicySettings


def test_defaults_are_strict() -> None:
    s = PolicySettings()
    assert s.betas.unlisted == "refuse"
    assert tuple(s.betas.allow) == DEFAULT_BETAS
    assert s.teams == {}
    assert s.exempt("anyone") == frozenset()
    assert s.exempt(None) == frozenset()


def test_unknown_rule_id_in_team_override() -> None:
    with pytest.raises(ValidationError, match=r"unknown rule id\(s\) \['anthropic.nope'\]"):
        PolicySettings.model_validate({"teams": {"sandbox": {"allow": ["anthropic.nope"]}}})


@pytest.mark.parametrize("pattern", ["files-api-*", "*", "code-execution-2025-*", "skills*"])
def test_retention_beta_cannot_be_allow_listed(pattern: str) -> None:
    with pytest.raises(ValidationError, match=r"policy\.teams"):
        PolicySettings.model_validate({"betas": {"allow": [pattern]}})


def test_unknown_option_and_bad_enum() -> None:
    with pytest.raises(ValidationError):
        PolicySettings(rules=[])  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        PolicySettings.model_validate({"betas": {"unlisted": "maybe"}})
    with pytest.raises(ValidationError):
        PolicySettings.model_validate({"teams": {"": {"allow": []}}})


def test_exempt() -> None:
    s = PolicySettings.model_validate({"teams": {"sandbox": {"allow": ["anthropic.mcp_servers"]}}})
    assert s.exempt("sandbox") == {"anthropic.mcp_servers"}
    assert s.exempt("prod") == frozenset()
