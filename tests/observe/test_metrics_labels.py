"""Memoised `labels()` on the request-path metrics: same children, same exported values."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from gateway.observe.metrics import Metrics


def test_memoised_children_export_like_plain_ones() -> None:
    m = Metrics(CollectorRegistry())
    first = m.requests.labels("anthropic", "messages", "2xx", "200", "team-a")
    assert m.requests.labels("anthropic", "messages", "2xx", "200", "team-a") is first
    first.inc()
    m.requests.labels("anthropic", "messages", "2xx", "200", "team-a").inc(2)
    m.requests.labels("anthropic", "messages", "4xx", "429", "team-a").inc()
    m.request_duration.labels("anthropic", "messages").observe(0.3)
    labels = {"provider": "anthropic", "route": "messages", "status_class": "2xx", "team": "team-a"}
    sample = m.registry.get_sample_value
    assert sample("zdr_gateway_requests_total", {**labels, "code": "200"}) == 3
    assert (
        sample("zdr_gateway_requests_total", {**labels, "status_class": "4xx", "code": "429"}) == 1
    )
    hist = {"provider": "anthropic", "route": "messages"}
    assert sample("zdr_gateway_request_duration_seconds_count", hist) == 1


def test_wrong_label_count_still_refused() -> None:
    m = Metrics(CollectorRegistry())
    with pytest.raises(ValueError, match="label"):
        m.requests.labels("anthropic", "messages")


def test_each_metrics_object_has_its_own_memo() -> None:
    a, b = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())
    a.chunk_gap.labels("anthropic").observe(0.01)
    assert (
        b.registry.get_sample_value(
            "zdr_gateway_stream_chunk_gap_seconds_count", {"provider": "anthropic"}
        )
        is None
    )
    assert b.chunk_gap.labels("anthropic") is not a.chunk_gap.labels("anthropic")


def test_config_hash_is_replaced_not_memoised() -> None:
    m = Metrics(CollectorRegistry())
    m.set_config_hash("aaaa")
    m.set_config_hash("bbbb")
    sample = m.registry.get_sample_value
    assert sample("zdr_gateway_config_info", {"hash": "bbbb"}) == 1
    assert sample("zdr_gateway_config_info", {"hash": "aaaa"}) is None


def test_labels_by_name_still_work() -> None:
    m = Metrics(CollectorRegistry())
    m.ratelimit_decisions.labels(limit="requests", outcome="allowed").inc()
    m.ratelimit_decisions.labels("requests", "allowed").inc()
    assert (
        m.registry.get_sample_value(
            "zdr_gateway_ratelimit_decisions_total", {"limit": "requests", "outcome": "allowed"}
        )
        == 2
    )
