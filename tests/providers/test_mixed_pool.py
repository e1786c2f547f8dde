"""A pool of mixed providers: an `anthropic` target that fails (529, or a reset before the
response head) and a `bedrock` target behind it (InvokeModel, SigV4 from the AWS chain).

Through the official anthropic SDK (no retries of its own): every request, JSON and
streamed, is served by Bedrock after the gateway's failover, the client sees Anthropic's
answer and no failure, and the tokens counted are the ones the client was told.
"""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam

from gateway.config import ConfigError, parse
from tests.conftest import Gateway, StartGateway
from tests.providers.conftest import EU_SONNET, MODELS
from tests.stages import conftest as stages
from tests.stages.conftest import Resetter, StandIn, pool_config
from tests.support.bedrock_standin import BedrockStandIn

# The stages' stand-ins (an Anthropic stub over TLS, a resetting server), shared here.
stand_in = stages.stand_in
resetter = stages.resetter

MODEL = "claude-sonnet-4-5"
PROMPT: list[MessageParam] = [{"role": "user", "content": "hi from the mixed pool"}]
N = 4


def tokens(gw: Gateway, kind: str) -> float:
    return gw.sample(
        "zdr_gateway_tokens_total", provider="anthropic", model=MODEL, kind=kind, team="anonymous"
    )


def attempts(gw: Gateway, target: str, outcome: str) -> float:
    return gw.sample(
        "zdr_gateway_upstream_attempts_total", upstream="anthropic", target=target, outcome=outcome
    )


@pytest.mark.parametrize("failure", ["529", "reset"])
async def test_failover_from_anthropic_to_bedrock_through_the_sdk(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    stand_in: Any,
    resetter: Any,
    bedrock: tuple[BedrockStandIn, str],
    failure: str,
) -> None:
    standin, b_url = bedrock
    standin.mantle = False  # InvokeModel: the body and the event stream are translated
    bad: StandIn | Resetter
    if failure == "529":
        failing: StandIn = await stand_in("sk-anthropic")
        failing.stub.behaviour.fail_status = 529
        bad = failing
    else:
        bad = await resetter()
    targets: list[dict[str, Any]] = [
        {"name": "anthropic", "url": bad.url, "api_key": "sk-anthropic"},
        {
            "name": "bedrock",
            "provider": "bedrock",
            "url": b_url,
            "api_key": "",  # SigV4 from the AWS chain (the stand-in verifies it)
            "priority": 1,
            "labels": {"region": "eu"},
            "bedrock": {
                "region": standin.region,
                "mode": "invoke",
                "models": MODELS,
                "check_invocation_logging": False,
            },
        },
    ]
    # No breaker: every request tries the failing target first and fails over.
    cfg = pool_config(config_dict, targets, breaker={"enabled": False})
    cfg["metrics"] = {"teams": ["anonymous"], "models": [MODEL]}
    gw = await start_gateway(cfg)
    client = anthropic.AsyncAnthropic(
        base_url=gw.url,
        api_key="client-key",
        max_retries=0,  # the gateway's failover, not the SDK's retries
        http_client=anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
    )
    told_in = told_out = 0
    async with client:
        for _ in range(N):
            msg = await client.messages.create(model=MODEL, max_tokens=16, messages=PROMPT)
            assert msg.content[0].type == "text"
            assert msg.content[0].text == standin.behaviour.reply
            told_in += msg.usage.input_tokens
            told_out += msg.usage.output_tokens
        async with client.messages.stream(model=MODEL, max_tokens=16, messages=PROMPT) as s:
            final = await s.get_final_message()
        assert final.content[0].type == "text"
        assert final.content[0].text == standin.behaviour.reply
        told_in += final.usage.input_tokens
        told_out += final.usage.output_tokens
    # Bedrock served all N + 1, signed, with its own model id in the path.
    invokes = [s for s in standin.seen if s.path.startswith("/model/")]
    assert len(invokes) == N + 1
    assert all(s.path.startswith(f"/model/{EU_SONNET}/") for s in invokes)
    assert all(s.access_key is not None for s in invokes)
    # The Anthropic target was tried first every time and refused each.
    if isinstance(bad, Resetter):
        assert bad.connections >= N + 1
        assert attempts(gw, "anthropic", "reset") == N + 1
    else:
        assert len(bad.stub.requests) == N + 1
        assert attempts(gw, "anthropic", "retryable_status") == N + 1
    assert attempts(gw, "bedrock", "success") == N + 1
    # Usage counted once per request, as the client was told (Bedrock's, not the failure's).
    assert told_out > 0
    assert tokens(gw, "input") == told_in
    assert tokens(gw, "output") == told_out


async def test_a_logging_bedrock_target_is_skipped_and_its_pool_still_serves(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    stand_in: Any,
    bedrock: tuple[BedrockStandIn, str],
) -> None:
    standin, b_url = bedrock
    standin.mantle = False
    standin.behaviour.logging_on = True  # the account logs prompts: refused by default
    good: StandIn = await stand_in("sk-anthropic")
    targets: list[dict[str, Any]] = [
        # Preferred, but its account logs invocations: never sent a request.
        {
            "name": "bedrock",
            "provider": "bedrock",
            "url": b_url,
            "api_key": "",
            "bedrock": {
                "region": standin.region,
                "mode": "invoke",
                "models": MODELS,
                "check_invocation_logging": True,
                "control_url": b_url,
            },
        },
        {"name": "anthropic", "url": good.url, "api_key": "sk-anthropic", "priority": 1},
    ]
    gw = await start_gateway(pool_config(config_dict, targets))
    client = anthropic.AsyncAnthropic(
        base_url=gw.url,
        api_key="client-key",
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
    )
    async with client:
        for _ in range(3):
            msg = await client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
            assert msg.content[0].type == "text"
    assert len(good.stub.requests) == 3
    assert [s.path for s in standin.seen] == ["/logging/modelinvocations"]  # the check only
    # A pool whose only target logs: none is eligible, a 503 (as for a single upstream).
    cfg = pool_config(config_dict, [targets[0]])
    gw = await start_gateway(cfg)
    client = anthropic.AsyncAnthropic(
        base_url=gw.url,
        api_key="client-key",
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
    )
    async with client:
        with pytest.raises(anthropic.APIStatusError) as refused:
            await client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
    assert refused.value.status_code == 503
    assert "logs model invocations" in refused.value.message


POOL = """server: {tls: {enabled: false}}
upstreams:
  - name: anthropic
    provider: anthropic
    targets:
      - {name: direct, url: "https://api.anthropic.com", api_key: k, labels: {region: eu}}
      - name: bedrock-eu
        provider: bedrock
        labels: {region: eu}
        bedrock: {region: eu-central-1, mode: invoke, models: {claude-sonnet-4-5: MODEL_ID}}
"""


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        # Residency is checked per cloud target, against its own labels.
        (("MODEL_ID", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"), "processed in 'global'"),
        (("provider: anthropic", "provider: openai"), "provider bedrock serves Anthropic's API"),
        (("provider: bedrock", "provider: vertex"), "needs a `vertex:` section"),
    ],
)
def test_a_mixed_pool_is_validated_per_target(edit: tuple[str, str], words: str) -> None:
    good = POOL.replace("MODEL_ID", EU_SONNET)
    pool = parse(good, env={}).upstreams[0].pool()
    assert [(t.name, t.provider) for t in pool] == [
        ("direct", "anthropic"),
        ("bedrock-eu", "bedrock"),
    ]
    assert pool[1].origin == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    with pytest.raises(ConfigError) as bad:
        parse(POOL.replace(*edit).replace("MODEL_ID", EU_SONNET), env={})
    assert "upstreams[0]" in str(bad.value)
    assert words in str(bad.value)


async def test_an_open_breaker_beside_a_logging_target_is_no_target_not_logging(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    resetter: Any,
    bedrock: tuple[BedrockStandIn, str],
) -> None:
    standin, b_url = bedrock
    standin.mantle = False
    standin.behaviour.logging_on = True
    bad: Resetter = await resetter()
    targets: list[dict[str, Any]] = [
        {"name": "anthropic", "url": bad.url, "api_key": "sk-anthropic"},
        {
            "name": "bedrock",
            "provider": "bedrock",
            "url": b_url,
            "api_key": "",
            "bedrock": {
                "region": standin.region,
                "mode": "invoke",
                "models": MODELS,
                "check_invocation_logging": True,
                "control_url": b_url,
            },
        },
    ]
    breaker = {"consecutive_failures": 1, "cooldown_seconds": 60}
    gw = await start_gateway(pool_config(config_dict, targets, breaker=breaker))
    client = anthropic.AsyncAnthropic(
        base_url=gw.url,
        api_key="client-key",
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
    )
    async with client:
        with pytest.raises(anthropic.APIStatusError) as first:
            await client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
        assert first.value.status_code == 502  # the reset, once; its breaker is open now
        with pytest.raises(anthropic.APIStatusError) as second:
            await client.messages.create(model=MODEL, max_tokens=8, messages=PROMPT)
    # The Anthropic target is down (breaker), not refused: the pool's usual 503.
    assert second.value.status_code == 503
    assert "No upstream target" in second.value.message
    assert [s.path for s in standin.seen] == ["/logging/modelinvocations"]
