"""Scope checks as a pure table: endpoint x model pattern x max_tokens → allowed / refused."""

from __future__ import annotations

import fnmatch

import pytest

from gateway.auth.principal import Principal
from gateway.auth.scopes import _matcher, check, model_allowed
from gateway.errors import PermissionDenied

P = Principal(
    key_id="k",
    team="t",
    source="key",
    endpoints=frozenset({"messages", "models"}),
    models=("claude-sonnet-*", "claude-haiku-4-5"),
    max_tokens=1000,
)
OPEN = Principal(key_id="k", team="t", source="key")

MATRIX = [
    # endpoint, model, max_tokens, expected reason (None = allowed)
    ("messages", "claude-sonnet-4-5", 1000, None),
    ("messages", "claude-haiku-4-5", 10, None),
    ("models", None, None, None),
    ("messages", "claude-opus-4-1", 10, "scope_model"),
    ("messages", "claude-haiku-4-5-20251001", 10, "scope_model"),  # pattern is exact
    ("messages", "CLAUDE-SONNET-4-5", 10, "scope_model"),  # case-sensitive
    ("messages", "claude-sonnet-4-5", 1001, "scope_max_tokens"),
    ("count_tokens", "claude-sonnet-4-5", None, "scope_endpoint"),
    ("batches", None, None, "scope_endpoint"),
]


@pytest.mark.parametrize(("endpoint", "model", "max_tokens", "reason"), MATRIX)
def test_matrix(
    endpoint: str, model: str | None, max_tokens: int | None, reason: str | None
) -> None:
    if reason is None:
        assert check(P, endpoint, model, max_tokens) == max_tokens
        return
    with pytest.raises(PermissionDenied) as exc:
        check(P, endpoint, model, max_tokens)
    assert exc.value.reason == reason
    assert exc.value.status == 403


def test_messages_name_the_missing_scope_but_not_the_model() -> None:
    with pytest.raises(PermissionDenied) as exc:
        check(P, "count_tokens", None, None)
    assert "endpoint count_tokens" in exc.value.message
    canary = "claude-CANARY-<script>"
    with pytest.raises(PermissionDenied) as exc:
        check(P, "messages", canary, 1)
    assert "model" in exc.value.message
    assert canary not in exc.value.message
    with pytest.raises(PermissionDenied) as exc:
        check(P, "messages", "claude-sonnet-4-5", 5000)
    assert "1000" in exc.value.message
    assert "5000" not in exc.value.message


def test_clamp_returns_the_ceiling() -> None:
    assert check(P, "messages", "claude-sonnet-4-5", 5000, clamp=True) == 1000
    assert check(P, "messages", "claude-sonnet-4-5", 50, clamp=True) == 50


def test_unrestricted_principal_allows_everything() -> None:
    assert check(OPEN, "batches", "anything", 10**6) == 10**6


def test_empty_model_list_allows_no_model() -> None:
    none = Principal(key_id="k", team="t", source="key", models=())
    with pytest.raises(PermissionDenied):
        check(none, "messages", "claude-sonnet-4-5", 1)


PATTERNS = [
    (),
    ("claude-*",),
    ("claude-sonnet-*", "claude-haiku-4-5"),
    ("*",),
    ("a*b*c", "[!x]?*", "claude-[sh]*-4-?"),
    ("exact", "ex*ct", "e[x]act"),
    ("claude-*\n",),  # a newline is text to fnmatch, never a line end
    ("(claude)|.*", "a.b"),  # regex syntax is literal in fnmatch
]
MODELS = [
    "",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
    "claude-h-4-9",
    "CLAUDE-SONNET-4-5",
    "abc",
    "axxbyyc",
    "x12",
    "y",
    "exact",
    "exact\n",
    "claude-\n",
    "(claude)|.*",
    "axb",
    "a.b",
]


@pytest.mark.parametrize("patterns", PATTERNS)
def test_compiled_model_scopes_match_exactly_as_fnmatchcase(patterns: tuple[str, ...]) -> None:
    for model in MODELS:
        want = any(fnmatch.fnmatchcase(model, p) for p in patterns)
        assert model_allowed(patterns, model) is want, (patterns, model)


def test_compiled_scopes_follow_the_patterns_and_stay_bounded() -> None:
    # Keyed by the patterns themselves: a key re-issued (or a grant reloaded) with other
    # models gets its own matcher, never a stale one; at most 1024 are kept.
    assert model_allowed(("claude-*",), "claude-x")
    assert not model_allowed(("gpt-*",), "claude-x")
    for i in range(1100):
        model_allowed((f"m{i}-*",), "m1-x")
    info = _matcher.cache_info()
    assert info.maxsize == 1024
    assert info.currsize <= 1024
