"""Metric labels from client input stay bounded and carry no client text."""

from __future__ import annotations

from gateway.observe.metrics import OTHER, Labels


def test_exact_model_names_only_by_default() -> None:
    labels = Labels([], ["claude-sonnet-5-5"])
    assert labels.model("claude-sonnet-5-5") == "claude-sonnet-5-5"
    assert labels.model("claude-CANARY-patient-name") == OTHER
    assert labels.model(None) == "none"


def test_glob_matches_are_capped() -> None:
    labels = Labels([], ["claude-*"], max_models=3)
    seen = {labels.model(f"claude-{i}") for i in range(100)}
    assert seen == {"claude-0", "claude-1", "claude-2", OTHER}
    assert labels.model("claude-1") == "claude-1"  # a known one stays itself


def test_glob_refuses_unsafe_characters() -> None:
    labels = Labels([], ["claude-*"])
    assert labels.model('claude-x"} 1\nfake_metric{a="') == OTHER
    assert labels.model("claude-" + "x" * 100) == OTHER


def test_series_stay_bounded_under_many_distinct_models() -> None:
    labels = Labels([], ["claude-*", "gpt-5"], max_models=10)
    values = {labels.model(f"claude-{i}") for i in range(10_000)}
    assert len(values) <= 11


def test_teams_bounded() -> None:
    labels = Labels(["research"], [])
    assert labels.team("research") == "research"
    assert labels.team("evil-team") == OTHER
    assert labels.team(None) == "none"


def test_process_metrics_exported() -> None:
    from prometheus_client import CollectorRegistry

    from gateway.observe.metrics import Metrics

    registry = CollectorRegistry()
    Metrics(registry)
    assert (registry.get_sample_value("process_resident_memory_bytes") or 0) > 0
