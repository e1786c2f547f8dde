"""The beta and tool catalogue: well formed, and every value Claude Code is known to send
classified (so a strict-mode gateway still serves it)."""

from __future__ import annotations

import pytest

from gateway.policy import catalogue
from gateway.policy.rules import BY_ID
from gateway.policy.settings import QUALIFIED

# code.claude.com llm-gateway-protocol and what 2.1.328 sent (shared/PROVIDERS.md).
CLAUDE_CODE_BETAS = [
    "claude-code-20250219",
    "interleaved-thinking-2025-05-14",
    "context-management-2025-06-27",
    "thinking-token-count-2026-05-13",
    "advanced-tool-use-2025-11-20",
    "effort-2025-11-24",
    "context-1m-2025-08-07",
    "prompt-caching-scope-2026-01-05",
    "mid-conversation-system-2026-04-07",
    "mid-conversation-tool-changes-2026-07-01",
    "advisor-tool-2026-03-01",
    "tool-examples-2025-10-29",
    "oauth-2025-04-20",
]


@pytest.mark.parametrize("value", CLAUDE_CODE_BETAS)
def test_claude_code_betas_are_eligible(value: str) -> None:
    entry = catalogue.beta(value)
    assert entry is not None
    assert entry.cls == "eligible"


def test_structured_outputs_beta_is_qualified() -> None:
    entry = catalogue.beta("structured-outputs-2025-12-15")
    assert entry is not None
    assert entry.cls == "qualified"
    assert entry.rule in QUALIFIED


@pytest.mark.parametrize(
    ("value", "cls"),
    [
        ("files-api-2025-04-14", "refused"),
        ("prompt-caching-2024-07-31", "eligible"),
        ("unknown-2026-01-01", None),
        ("claude-code", None),  # the family alone is not a documented value... but
    ],
)
def test_beta_lookup(value: str, cls: str | None) -> None:
    entry = catalogue.beta(value)
    if value == "claude-code":  # ...an undated value matches its family: no date to strip
        assert entry is not None
        return
    assert (entry.cls if entry else None) == cls


def test_tool_lookup() -> None:
    assert catalogue.tool("web_search_20250305").cls == "eligible"  # type: ignore[union-attr]
    assert catalogue.tool("web_search_20260209").cls == "qualified"  # type: ignore[union-attr]
    assert catalogue.tool("code_execution_20990101").cls == "refused"  # type: ignore[union-attr]
    assert catalogue.tool("web_search_20990101") is None  # eligible only where catalogued
    assert catalogue.tool("web_search") is None


def test_entries_are_well_formed() -> None:
    for table in (catalogue.BETAS, catalogue.TOOLS):
        names = [e.name for e in table]
        assert len(names) == len(set(names))
        for e in table:
            assert e.source.startswith("https://")
            assert (e.rule is None) == (e.cls == "eligible"), e
            if e.rule is not None:
                assert e.rule in BY_ID
            if e.cls == "qualified":
                assert e.rule in QUALIFIED


def test_posture_shows_version_and_every_entry() -> None:
    shown = catalogue.posture()
    assert shown["version"] == catalogue.VERSION
    assert len(shown["betas"]) == len(catalogue.BETAS)  # type: ignore[arg-type]
    assert {
        "family": "files-api",
        "class": "refused",
        "rule": "anthropic.beta.files_api",
        "source": catalogue.ZDR_TABLE,
    } in shown["betas"]  # type: ignore[operator]
