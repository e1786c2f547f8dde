"""`policy:` section validation: bad values are refused at load, with the path."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config import Config
from gateway.policy.settings import QUALIFIED, PolicySettings


def test_defaults_let_new_clients_work_and_keep_qualified_defaults() -> None:
    s = PolicySettings()
    # Unknown values are forwarded, counted and marked (docs/policy.md says why).
    assert s.betas.unlisted == "allow"
    assert s.tools.unlisted == "allow"
    assert s.betas.allow == []
    assert s.tools.allow == []
    assert s.qualified == QUALIFIED
    assert s.allowed_qualified == {"anthropic.structured_outputs"}
    assert s.teams == {}
    assert s.exempt("anyone") == frozenset()
    assert s.exempt(None) == frozenset()


def test_strict_mode_and_qualified_toggles() -> None:
    s = PolicySettings.model_validate(
        {
            "betas": {"unlisted": "refuse"},
            "tools": {"unlisted": "refuse"},
            "qualified": {"anthropic.structured_outputs": "refuse"},
        }
    )
    assert s.betas.unlisted == s.tools.unlisted == "refuse"
    # A partial `qualified` keeps the other defaults.
    assert s.qualified["anthropic.web_dynamic_filtering"] == "refuse"
    assert s.allowed_qualified == frozenset()


def test_unknown_qualified_rule_names_the_path() -> None:
    with pytest.raises(
        ValidationError, match=r"unknown qualified rule\(s\) \['anthropic.batches'\]"
    ):
        PolicySettings.model_validate({"qualified": {"anthropic.batches": "allow"}})
    with pytest.raises(ValidationError) as err:
        Config.model_validate(
            {
                "upstreams": [{"name": "a", "provider": "anthropic", "url": "http://x"}],
                "policy": {"qualified": {"anthropic.structured_outputs": "maybe"}},
            }
        )
    assert "policy.qualified" in str(err.value)


def test_unknown_rule_id_in_team_override() -> None:
    with pytest.raises(ValidationError, match=r"unknown rule id\(s\) \['anthropic.nope'\]"):
        PolicySettings.model_validate({"teams": {"sandbox": {"allow": ["anthropic.nope"]}}})


@pytest.mark.parametrize("pattern", ["files-api-*", "*", "code-execution-2025-*", "skills*"])
def test_retention_beta_cannot_be_allow_listed(pattern: str) -> None:
    with pytest.raises(ValidationError, match=r"policy\.teams"):
        PolicySettings.model_validate({"betas": {"allow": [pattern]}})


@pytest.mark.parametrize("pattern", ["code_execution_*", "*", "mcp_toolset*"])
def test_retention_tool_cannot_be_allow_listed(pattern: str) -> None:
    with pytest.raises(ValidationError, match=r"policy\.teams"):
        PolicySettings.model_validate({"tools": {"allow": [pattern]}})


def test_unknown_option_and_bad_enum() -> None:
    with pytest.raises(ValidationError):
        PolicySettings(rules=[])  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        PolicySettings.model_validate({"betas": {"unlisted": "maybe"}})
    with pytest.raises(ValidationError):
        PolicySettings.model_validate({"tools": {"unlisted": "maybe"}})
    with pytest.raises(ValidationError):
        PolicySettings.model_validate({"teams": {"": {"allow": []}}})


def test_exempt() -> None:
    s = PolicySettings.model_validate({"teams": {"sandbox": {"allow": ["anthropic.mcp_servers"]}}})
    assert s.exempt("sandbox") == {"anthropic.mcp_servers"}
    assert s.exempt("prod") == frozenset()
