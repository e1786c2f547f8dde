"""Audit events: the fixed field list, from context metadata only."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from gateway.audit import event as events
from gateway.auth.principal import Principal
from gateway.context import RequestContext, Usage

CANARY = "CANARY-audit-event-55d1"


def ctx() -> RequestContext:
    c = RequestContext(request_id="req_abc", started=100.0)
    c.route = SimpleNamespace(  # type: ignore[assignment]
        endpoint=SimpleNamespace(kind="messages"),
        upstream=SimpleNamespace(name="anthropic"),
        provider=SimpleNamespace(name="anthropic"),
    )
    c.principal = Principal(key_id="k_2026_01", team="payments", source="key")
    c.body = json.dumps({"messages": [{"role": "user", "content": CANARY}]}).encode()
    c.json = {"model": CANARY, "messages": [{"role": "user", "content": CANARY}]}
    c.model = CANARY
    c.model_label = "other"
    c.stream = True
    c.status = 200
    c.decisions = ["override:anthropic.code_execution"]
    c.usage = Usage(12, 34, 5, 6)
    c.bytes_in, c.bytes_out = 321, 4567
    c.ttfb = 0.25
    c.upstream_status = 200
    c.upstream_request_id = "req_011CV"
    return c


def test_event_has_exactly_the_documented_fields() -> None:
    e = events.build(ctx(), now=0.0, ended=101.5)
    optional = ("client_ip_hash", "session_id_hash")
    assert list(e) == [f for f in events.FIELDS if f not in optional]
    assert e["time"] == "1970-01-01T00:00:00.000+00:00"
    assert e["audit"] == 1
    assert e["key_id"] == "k_2026_01"
    assert e["team"] == "payments"
    assert (e["provider"], e["upstream"], e["endpoint"]) == ("anthropic", "anthropic", "messages")
    assert e["model"] == "other"
    assert e["decisions"] == ["override:anthropic.code_execution"]
    assert (e["input_tokens"], e["output_tokens"]) == (12, 34)
    assert (e["cache_creation_input_tokens"], e["cache_read_input_tokens"]) == (5, 6)
    assert (e["bytes_in"], e["bytes_out"]) == (321, 4567)
    assert e["duration_ms"] == 1500.0
    assert e["ttfb_ms"] == 250.0
    assert e["upstream_request_id"] == "req_011CV"


def test_no_content_and_raw_model_never_used() -> None:
    blob = json.dumps(events.build(ctx()))
    assert CANARY not in blob


def test_unsafe_identifiers_become_invalid() -> None:
    c = ctx()
    c.principal = Principal(key_id=f"k {CANARY}", team=f"t\n{CANARY}", source="oidc")
    c.upstream_request_id = f'"{CANARY}"'
    c.request_id = "x" * 200
    e = events.build(c)
    assert e["key_id"] == e["team"] == e["upstream_request_id"] == e["request_id"] == "invalid"


def test_unrouted_request() -> None:
    c = RequestContext(request_id="req_404")
    c.status = 404
    e = events.build(c)
    assert e["provider"] is e["endpoint"] is e["key_id"] is None
    assert e["model"] == "none"


def test_client_ip_is_keyed_hash() -> None:
    h = events.hash_ip("203.0.113.7", "k" * 16)
    assert len(h) == 32
    assert "203.0.113.7" not in h
    assert h != events.hash_ip("203.0.113.7", "j" * 16)
    assert h == events.hash_ip("203.0.113.7", "k" * 16)
    e = events.build(ctx(), client_ip_hash=h)
    assert e["client_ip_hash"] == h


@pytest.mark.parametrize(
    "wall",
    [
        1_790_000_000.0,
        1_790_000_000.0005,  # rounds up to the next microsecond, not millisecond
        1_790_000_000.9995,
        1_790_000_000.9999996,  # rounds into the next second
        1_790_000_059.999,
        0.0015,
        *[1_790_000_000 + i * 0.1234567 for i in range(50)],
    ],
)
def test_iso_time_is_datetime_isoformat(wall: float) -> None:
    from datetime import UTC, datetime

    assert events.iso_time(wall) == datetime.fromtimestamp(wall, UTC).isoformat(
        timespec="milliseconds"
    )
