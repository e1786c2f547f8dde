"""Bedrock invocation logging: read from the control plane, shown in posture and a metric,
and (by policy) a target whose account logs prompts and completions gets no request."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import pytest
from anthropic.types import MessageParam

from gateway.providers.bedrock_logging import read_config
from tests.conftest import Gateway, StartGateway
from tests.providers.conftest import BedrockUpstream, sdk, without_env_keys
from tests.support.bedrock_standin import BedrockStandIn

PROMPT: list[MessageParam] = [{"role": "user", "content": "Hi"}]


def logging_gauge(gw: Gateway) -> float:
    # A cloud upstream is a pool of one target named after it.
    name = "zdr_gateway_provider_invocation_logging"
    return gw.sample(name, upstream="bedrock", target="bedrock")


async def posture(gw: Gateway) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(gw.admin_url + "/zdr/posture") as r:
        assert r.status == 200
        doc: dict[str, Any] = await r.json()
    # A cloud upstream is a pool of one cloud target: its posture is the target's.
    (target,) = doc["upstreams"][0]["targets"]
    assert target["provider"] == "bedrock"
    out: dict[str, Any] = target
    return out


@pytest.mark.parametrize(
    ("logging_on", "policy", "served"),
    [(False, {}, True), (True, {}, False), (True, {"provider_logging": "allow"}, True)],
)
async def test_logging_state_posture_metric_and_refusal(
    logging_on: bool,
    policy: dict[str, str],
    served: bool,
    bedrock: tuple[BedrockStandIn, str],
    bedrock_upstream: BedrockUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
) -> None:
    standin, url = bedrock
    standin.behaviour.logging_on = logging_on
    upstream = bedrock_upstream(check_invocation_logging=True, control_url=url)
    config_dict["upstreams"] = [upstream]
    config_dict["policy"] = policy
    gw = await start_gateway(config_dict)
    control = standin.seen[0]
    assert control.path == "/logging/modelinvocations"
    assert control.service == "bedrock"  # the control plane signs as `bedrock`
    assert control.access_key is not None
    state = await posture(gw)
    assert state["invocation_logging"] == ("on" if logging_on else "off")
    assert state["invocation_logging_destinations"] == (["cloudwatch"] if logging_on else [])
    value = logging_gauge(gw)
    assert value == (1.0 if logging_on else 0.0)
    client = sdk(gw)
    try:
        if served:
            await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
        else:
            with pytest.raises(anthropic.APIStatusError) as info:
                await client.messages.create(
                    model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT
                )
            assert info.value.status_code == 503
            assert "logs model invocations" in str(info.value)
    finally:
        await client.close()
    data_plane = [s for s in standin.seen if s.path.startswith("/anthropic/")]
    assert len(data_plane) == (1 if served else 0)


async def test_api_key_only_is_unknown_and_policy_can_refuse_unknown(
    bedrock: tuple[BedrockStandIn, str],
    bedrock_upstream: BedrockUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    aws_env: pytest.MonkeyPatch,
) -> None:
    standin, url = bedrock
    without_env_keys(aws_env)
    upstream = bedrock_upstream(
        api_key=standin.api_key, check_invocation_logging=True, control_url=url
    )
    config_dict["upstreams"] = [upstream]
    config_dict["policy"] = {"provider_logging_unknown": "refuse"}
    gw = await start_gateway(config_dict)
    state = await posture(gw)
    assert state["invocation_logging"] == "unknown"
    assert state["invocation_logging_reason"] == "no_sigv4_credentials"
    assert logging_gauge(gw) == -1.0
    client = sdk(gw)
    with pytest.raises(anthropic.APIStatusError) as info:
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
    await client.close()
    assert info.value.status_code == 503
    assert standin.seen == []


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({}, ("off", [])),
        ({"loggingConfig": {"s3Config": {"bucketName": "b"}}}, ("on", ["s3"])),
        (
            {"loggingConfig": {"s3Config": {"bucketName": "b"}, "textDataDeliveryEnabled": False,
             "imageDataDeliveryEnabled": False, "embeddingDataDeliveryEnabled": False,
             "videoDataDeliveryEnabled": False}},
            ("off", ["s3"]),
        ),
        ({"loggingConfig": {"textDataDeliveryEnabled": True}}, ("off", [])),
        ([], ("off", [])),
    ],
)  # fmt: skip
def test_read_config(doc: Any, expected: tuple[str, list[str]]) -> None:
    assert read_config(doc) == expected
