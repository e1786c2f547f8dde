"""A pool under the proof harness: failover keeps content, target keys and target
addresses out of every place the gateway writes or shows."""

from __future__ import annotations

import pytest

from tests.zdr.conftest import Proof, canary

pytestmark = pytest.mark.asyncio(loop_scope="module")


def message_body(secret: str, stream: bool) -> dict[str, object]:
    return {
        "model": "claude-sonnet-5-5",
        "max_tokens": 16,
        "stream": stream,
        "messages": [{"role": "user", "content": f"prompt {secret}"}],
    }


async def test_failover_leaks_no_content_key_or_target_address(gw: Proof) -> None:
    secret = canary("pool")
    gw.stub.behaviour.reply = f"answer {secret} "
    for stream in (False, True):
        status, headers, body = await gw.send(
            "POST", "/pool/v1/messages", json=message_body(secret, stream=stream)
        )
        assert status == 200, body
        assert secret in body.decode()
        event = await gw.audit_event(headers["x-gateway-request-id"])
        assert (event["upstream"], event["target"]) == ("pool", "live")
        assert event["attempts"] in (1, 2)  # 2 while `down`'s breaker is still closed
    assert gw.reached_upstream(secret)
    assert await gw.leaks(secret) == []
    assert await gw.leaks(gw.stub.api_key) == []  # every target's credential
    assert await gw.leaks(gw.pool_down) == []  # a target's address: never, not even in errors
    port = gw.pool_down.rsplit(":", 1)[1]
    assert await gw.leaks(f":{port}") == []
