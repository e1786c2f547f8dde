"""Metric labels from client input stay bounded and carry no client text."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from gateway.auth.rejected import REASONS
from gateway.observe.metrics import OTHER, Labels
from gateway.policy.rules import RULES
from gateway.stages.forward import UPSTREAM_ERROR_KINDS
from tests.conftest import Gateway


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


async def test_alert_and_dashboard_series_exist_at_zero_on_a_fresh_gateway(
    gateway: Gateway,
) -> None:
    """Before any failure: the series the shipped alerts and dashboard read are exported
    at 0, for every bounded label value (not missing until the first event)."""
    async with aiohttp.ClientSession() as http, http.get(gateway.admin_url + "/metrics") as r:
        text = await r.text()
    for family in (
        "zdr_gateway_auth_failures_total",
        "zdr_gateway_policy_refusals_total",
        "zdr_gateway_stream_errors_total",
        "zdr_gateway_upstream_errors_total",
    ):
        assert f"\n{family}{{" in text, family
    assert gateway.sample("zdr_gateway_auth_failures_total", reason="bad_signature") == 0
    for reason in REASONS:
        assert f'zdr_gateway_auth_failures_total{{reason="{reason}"}} 0.0' in text
    for rule in RULES:
        assert f'zdr_gateway_policy_refusals_total{{rule="{rule.id}"}} 0.0' in text
    for kind in UPSTREAM_ERROR_KINDS:
        assert (
            f'zdr_gateway_upstream_errors_total{{kind="{kind}",upstream="anthropic"}} 0.0' in text
        )
        assert (
            f'zdr_gateway_stream_errors_total{{provider="anthropic",type="upstream_{kind}"}} 0.0'
            in text
        )
    assert (
        'zdr_gateway_stream_errors_total{provider="anthropic",type="overloaded_error"} 0.0' in text
    )


def test_every_auth_refusal_reason_is_in_the_exported_set() -> None:
    """A new `Rejected("...")` reason must join REASONS, or it would appear only once it
    first happens (and the 0-series promise would quietly break)."""
    root = Path(__file__).resolve().parents[2] / "gateway"
    used = {
        m.group(1)
        for path in root.rglob("*.py")
        for m in re.finditer(r'Rejected\("([a-z_]+)"', path.read_text())
    }
    assert used, "the scan found no Rejected(...) call: the pattern is stale"
    assert used <= REASONS, sorted(used - REASONS)
