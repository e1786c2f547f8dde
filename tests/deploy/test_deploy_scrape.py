"""Every metric name an alert rule or a dashboard query reads is in a real scrape of a
running gateway: real TLS traffic through the official SDK, then GET /metrics."""

from __future__ import annotations

import aiohttp
import anthropic
import pytest
from anthropic.types import MessageParam
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Gateway, Upstream
from tests.deploy.deploy_support import exposed_metric_names, used_metric_names

PROMPT: list[MessageParam] = [{"role": "user", "content": "Hi"}]
MODEL = "claude-sonnet-5-5"


async def drain_stream(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(model=MODEL, max_tokens=16, messages=PROMPT) as stream:
        async for _ in stream.text_stream:
            pass


async def send_traffic(client: anthropic.AsyncAnthropic, upstream: Upstream, gw: Gateway) -> None:
    """Plain, streamed, count_tokens, models, a mid-stream error, an upstream reset, a 404."""
    await client.messages.create(model=MODEL, max_tokens=16, messages=PROMPT)
    upstream.stub.behaviour.event_delay = 0.005  # separate chunks: inter-chunk gaps
    await drain_stream(client)
    upstream.stub.behaviour.event_delay = 0.0
    await client.messages.count_tokens(model=MODEL, messages=PROMPT)
    await client.models.retrieve("claude-haiku-5-5")
    upstream.stub.behaviour.stream_error = True
    with pytest.raises(anthropic.APIStatusError):
        await drain_stream(client)
    upstream.stub.behaviour.stream_error = False
    upstream.stub.behaviour.reset_after = 1
    with pytest.raises(anthropic.APIError):
        await drain_stream(client)
    upstream.stub.behaviour.reset_after = None
    async with (
        aiohttp.ClientSession() as http,
        http.get(gw.url + "/v1/nowhere", ssl=gw.client_ssl()) as resp,
    ):
        assert resp.status == 404


async def scrape(gw: Gateway) -> tuple[dict[str, str], dict[str, float]]:
    """({family: type}, {sample name: sum of its values}) from the admin port."""
    async with aiohttp.ClientSession() as http, http.get(gw.admin_url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/plain")
        text = await resp.text()
    families: dict[str, str] = {}
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        # prometheus_client exposes each counter's and histogram's creation time as a
        # separate `<name>_created` gauge family; nothing here reads those.
        if family.name.endswith("_created"):
            continue
        families[family.name] = family.type
        for s in family.samples:
            samples[s.name] = samples.get(s.name, 0.0) + s.value
    return families, samples


async def test_every_metric_used_by_alerts_and_dashboard_is_scraped(
    anthropic_client: anthropic.AsyncAnthropic, upstream: Upstream, gateway: Gateway
) -> None:
    await send_traffic(anthropic_client, upstream, gateway)
    families, samples = await scrape(gateway)
    in_scrape = exposed_metric_names(families)
    used = used_metric_names()
    assert used, "no alert or dashboard query reads a zdr_gateway_* metric"
    missing = used - in_scrape
    assert not missing, f"used in alerts/dashboard but not exported: {sorted(missing)}"
    # The scrape and gateway/observe/metrics.py agree on the whole set, nothing more, nothing less.
    ours = {n for n in exposed_metric_names() if n.startswith("zdr_gateway_")}
    assert {n for n in in_scrape if n.startswith("zdr_gateway_")} == ours
    assert "process_resident_memory_bytes" in in_scrape

    # And the traffic really moved the series the dashboard's main panels plot.
    for name in (
        "zdr_gateway_requests_total",
        "zdr_gateway_request_duration_seconds_count",
        "zdr_gateway_time_to_first_byte_seconds_count",
        "zdr_gateway_upstream_duration_seconds_count",
        "zdr_gateway_stream_chunk_gap_seconds_count",
        "zdr_gateway_tokens_total",
        "zdr_gateway_request_bytes_total",
        "zdr_gateway_response_bytes_total",
        "zdr_gateway_stream_errors_total",
        "zdr_gateway_upstream_errors_total",
        "zdr_gateway_build_info",
        "zdr_gateway_config_info",
        "zdr_gateway_ready",
    ):
        assert samples.get(name, 0) > 0, name
    assert samples["zdr_gateway_requests_total"] == 7
    assert samples["zdr_gateway_requests_in_flight"] == 0
