"""Pools over real sockets: failover before the first byte, never after; the breaker's
cycle; the retry budget in a total outage; one rate-limit admission per request;
the official SDK through a pool."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import anthropic
import pytest
from anthropic.types import MessageParam

from tests.conftest import Gateway, StartGateway
from tests.stages.conftest import Resetter, StandIn, pool_config
from tests.support import audit as support_audit

BODY = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "hi"}],
}
PROMPT: list[MessageParam] = [{"role": "user", "content": "hi"}]
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "client-key"}
N = 20


async def post(gw: Gateway, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + "/v1/messages", json=body or BODY, headers=HEADERS, ssl=gw.client_ssl()
        ) as resp,
    ):
        return resp.status, await resp.read()


def attempts(gw: Gateway, target: str, outcome: str) -> float:
    return gw.sample(
        "zdr_gateway_upstream_attempts_total", upstream="anthropic", target=target, outcome=outcome
    )


@pytest.mark.parametrize("failure", ["reset", "529"])
async def test_failover_serves_every_request_from_the_healthy_target(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    stand_in: Any,
    resetter: Any,
    failure: str,
) -> None:
    good: StandIn = await stand_in("sk-good")
    bad: Resetter | StandIn
    seen: Callable[[], int]
    if failure == "reset":
        resets: Resetter = await resetter()
        bad, seen = resets, lambda: resets.connections
    else:
        failing: StandIn = await stand_in("sk-bad")
        failing.stub.behaviour.fail_status = 529
        bad, seen = failing, lambda: len(failing.stub.requests)
    # The default settings: the breaker soon sheds `bad`, retries stay within the budget.
    # Distinct keys: a retry carries the key of the target it goes to, not the first's.
    targets = [
        {"name": "bad", "url": bad.url, "api_key": "sk-bad"},
        {"name": "good", "url": good.url, "api_key": "sk-good"},
    ]
    gw = await start_gateway(pool_config(config_dict, targets))
    for i in range(N):
        status, body = await post(gw, {**BODY, "stream": i % 2 == 0})
        assert status == 200, body
        assert b"error" not in body
    assert len(good.stub.requests) == N
    assert set(good.stub.key_hashes) == {hashlib.sha256(b"sk-good").hexdigest()[:16]}
    outcome = "reset" if failure == "reset" else "retryable_status"
    tried_bad = attempts(gw, "bad", outcome)
    assert tried_bad > 0  # the failure happened, and the client never saw it
    assert attempts(gw, "good", "success") == N
    assert seen() == tried_bad


async def test_no_retry_after_the_first_byte(
    start_gateway: StartGateway, config_dict: dict[str, Any], stand_in: Any
) -> None:
    cut, other = await stand_in(), await stand_in()
    cut.stub.behaviour.reset_after = 2  # two deltas, then the connection drops
    targets = [
        {"name": "cut", "url": cut.url, "priority": 0},
        {"name": "other", "url": other.url, "priority": 1},
    ]
    gw = await start_gateway(pool_config(config_dict, targets))
    status, body = await post(gw, {**BODY, "stream": True})
    assert status == 200
    assert b"content_block_delta" in body
    assert body.rstrip().endswith(b"}")
    assert b"event: error" in body
    assert b"message_stop" not in body
    assert other.stub.requests == []  # nothing was re-sent
    assert attempts(gw, "cut", "success") == 1
    assert gw.sample("zdr_gateway_upstream_errors_total", upstream="anthropic", kind="reset") == 1


async def breaker_state(gw: Gateway) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(gw.admin_url + "/readyz") as r:
        assert r.status == 200  # ready whatever the breakers say
        doc: dict[str, Any] = await r.json()
        return doc


async def test_breaker_opens_sheds_probes_and_closes(
    start_gateway: StartGateway, config_dict: dict[str, Any], stand_in: Any
) -> None:
    a, b = await stand_in(), await stand_in()
    a.stub.behaviour.fail_status = 529
    targets = [{"name": "a", "url": a.url}, {"name": "b", "url": b.url, "priority": 1}]
    breaker = {"consecutive_failures": 2, "cooldown_seconds": 0.5}
    gw = await start_gateway(pool_config(config_dict, targets, breaker=breaker))
    state = "zdr_gateway_upstream_breaker_state"
    assert await breaker_state(gw) == {"status": "ready"}
    for _ in range(2):  # a fails, b serves: a's breaker opens
        assert (await post(gw))[0] == 200
    assert len(a.stub.requests) == 2
    assert gw.sample(state, upstream="anthropic", target="a") == 2
    assert (await breaker_state(gw))["upstreams"] == {"anthropic": {"a": "open", "b": "closed"}}
    for _ in range(5):  # shed: a gets nothing at all
        assert (await post(gw))[0] == 200
    assert len(a.stub.requests) == 2
    assert len(b.stub.requests) == 7
    a.stub.behaviour.fail_status = None
    await asyncio.sleep(0.6)
    assert (await post(gw))[0] == 200  # the probe, to a
    assert len(a.stub.requests) == 3
    assert gw.sample(state, upstream="anthropic", target="a") == 0
    for _ in range(3):  # closed: a has its traffic back
        assert (await post(gw))[0] == 200
    assert len(a.stub.requests) == 6
    assert len(b.stub.requests) == 7
    assert await breaker_state(gw) == {"status": "ready"}


async def test_retry_budget_bounds_attempts_in_a_total_outage(
    start_gateway: StartGateway, config_dict: dict[str, Any], stand_in: Any
) -> None:
    a, b = await stand_in(), await stand_in()
    for s in (a, b):
        s.stub.behaviour.fail_status = 503
    targets = [{"name": "a", "url": a.url}, {"name": "b", "url": b.url}]
    cfg = pool_config(
        config_dict,
        targets,
        breaker={"enabled": False},
        retry={"max_attempts": 3},
        retry_budget={"ratio": 0.2, "window_seconds": 60, "min_retries": 3},
    )
    gw = await start_gateway(cfg)
    n = 50
    results = await asyncio.gather(*(post(gw) for _ in range(n)))
    for status, body in results:
        assert status == 503  # the upstream's own answer, passed as it is
        assert json.loads(body)["error"]["type"] == "api_error"
    sent = len(a.stub.requests) + len(b.stub.requests)
    assert n < sent <= n + 0.2 * n + 3  # without the budget: 3 * n
    assert gw.sample("zdr_gateway_upstream_retry_budget_exhausted_total", upstream="anthropic") > 0


async def test_retry_after_beyond_the_cap_is_not_waited_for(
    start_gateway: StartGateway, config_dict: dict[str, Any], stand_in: Any
) -> None:
    only = await stand_in()
    only.stub.behaviour.fail_status = 429
    only.stub.behaviour.retry_after = "30"
    gw = await start_gateway(pool_config(config_dict, [{"name": "only", "url": only.url}]))
    status, _ = await post(gw)
    assert status == 429
    assert len(only.stub.requests) == 1
    only.stub.behaviour.retry_after = "0.1"  # within the cap: the same target, once more
    status, _ = await post(gw)
    assert status == 429
    assert len(only.stub.requests) == 3
    only.stub.behaviour.retry_after = "30"
    for _ in range(8):  # 429s never open the breaker: the provider's answer keeps coming
        assert (await post(gw))[0] == 429
    state = gw.sample("zdr_gateway_upstream_breaker_state", upstream="anthropic", target="only")
    assert state == 0


async def test_a_retried_request_is_one_rate_limit_admission(
    start_gateway: StartGateway, config_dict: dict[str, Any], stand_in: Any, resetter: Any
) -> None:
    bad, good = await resetter(), await stand_in()
    targets = [{"name": "bad", "url": bad.url}, {"name": "good", "url": good.url, "priority": 1}]
    cfg = pool_config(config_dict, targets, breaker={"enabled": False})
    cfg["ratelimit"] = {"defaults": {"rpm": 3, "concurrency": 1}, "burst": 1}
    gw = await start_gateway(cfg)
    for _ in range(3):
        assert (await post(gw))[0] == 200  # each tried `bad`, then `good`
    assert bad.connections == 3
    assert (await post(gw))[0] == 429  # the fourth: rpm 3 counted 3, not 6
    allowed = gw.sample("zdr_gateway_ratelimit_decisions_total", limit="key_rpm", outcome="allowed")
    assert allowed == 3


async def test_official_sdk_through_a_pool_sees_no_difference(
    start_gateway: StartGateway, config_dict: dict[str, Any], stand_in: Any, resetter: Any
) -> None:
    bad, good, other = await resetter(), await stand_in(), await stand_in()
    targets = [
        {"name": "bad", "url": bad.url, "weight": 5},
        {"name": "good", "url": good.url},
        {"name": "other", "url": other.url},
    ]
    gw = await start_gateway(pool_config(config_dict, targets, breaker={"enabled": False}))
    client = anthropic.AsyncAnthropic(
        base_url=gw.url,
        api_key="client-key",
        max_retries=0,  # the gateway's own failover, not the SDK's retries
        http_client=anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
    )
    async with client:
        for _ in range(5):
            msg = await client.messages.create(
                model="claude-sonnet-5-5", max_tokens=8, messages=PROMPT
            )
            assert msg.content[0].type == "text"
            assert msg.usage.output_tokens > 0
        async with client.messages.stream(
            model="claude-sonnet-5-5", max_tokens=8, messages=PROMPT
        ) as stream:
            text = await stream.get_final_text()
        assert text
        model = await client.models.retrieve("claude-sonnet-5-5")
        assert model.id == "claude-sonnet-5-5"
    assert len(good.stub.requests) + len(other.stub.requests) == 7
    assert bad.connections > 0


async def test_openai_sdk_through_a_pool_with_a_dead_target(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    openai_stub: Any,
    cert_files: dict[str, str],
) -> None:
    import openai

    stub, url = openai_stub
    config_dict["upstreams"].append(
        {
            "name": "openai",
            "provider": "openai",
            "prefix": "/openai",
            "ca_file": cert_files["ca_file"],
            "targets": [
                {"name": "dead", "url": "https://127.0.0.1:9", "api_key": "sk-dead"},
                {"name": "live", "url": url, "api_key": stub.api_key, "priority": 1},
            ],
        }
    )
    gw = await start_gateway(config_dict)
    client = openai.AsyncOpenAI(
        base_url=gw.url + "/openai/v1",
        api_key="client-key",
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
    )
    async with client:
        for _ in range(3):
            done = await client.chat.completions.create(
                model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}]
            )
            assert done.choices[0].message.content
    assert len(stub.requests) == 3  # each reached the live target with its own key
    keys = {v for r in stub.requests for k, v in r.headers.items() if k.lower() == "authorization"}
    assert keys == {f"Bearer {stub.api_key}"}
    assert (
        gw.sample(
            "zdr_gateway_upstream_attempts_total",
            upstream="openai",
            target="dead",
            outcome="connect",
        )
        == 3
    )


async def test_a_request_that_fails_upstream_records_its_attempts(
    start_gateway: StartGateway, config_dict: dict[str, Any], tmp_path: Any
) -> None:
    targets = [{"name": "gone", "url": "https://127.0.0.1:9"}]
    cfg = pool_config(config_dict, targets)
    cfg["audit"] = support_audit.file_sink(tmp_path / "audit")
    gw = await start_gateway(cfg)
    status, body = await post(gw)
    assert status == 502
    assert json.loads(body)["error"]["message"] == "Could not connect to the upstream API."
    assert gw.sample("zdr_gateway_upstream_errors_total", upstream="anthropic", kind="connect") == 1
    assert attempts(gw, "gone", "connect") == 2  # alone: the same target once more
    for _ in range(50):
        lines = support_audit.text(tmp_path / "audit").splitlines()
        if lines:
            break
        await asyncio.sleep(0.02)
    event = json.loads(lines[0])
    assert (event["status"], event["target"], event["attempts"]) == (502, "gone", 2)
