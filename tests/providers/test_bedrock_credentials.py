"""AWS credentials from botocore's chain, refreshed off the event loop ahead of expiry.

The container-credentials endpoint (EKS Pod Identity, ECS) is served by this test's own
event loop: had botocore's synchronous refresh run on the loop, it would wait for an
answer the blocked loop could never send, and the test would hang instead of passing.
"""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web
from anthropic.types import MessageParam

from tests.conftest import StartGateway
from tests.providers.conftest import BedrockUpstream, sdk, serve, without_env_keys
from tests.support.bedrock_standin import BedrockStandIn

PROMPT: list[MessageParam] = [{"role": "user", "content": "Hi"}]
POD_TOKEN = "pod-identity-token-for-tests"


async def test_container_credentials_rotate_without_blocking_the_loop(
    bedrock: tuple[BedrockStandIn, str],
    bedrock_upstream: BedrockUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    aws_env: pytest.MonkeyPatch,
) -> None:
    standin, _ = bedrock
    standin.secrets.clear()
    issued: list[str] = []

    async def credentials(request: web.Request) -> web.Response:
        assert request.headers.get("Authorization") == POD_TOKEN
        n = len(issued) + 1
        access, secret, token = f"ASIAPOD{n:013d}", f"secret-{n}", f"session-{n}"
        standin.secrets[access] = (secret, token)
        issued.append(access)
        # Inside botocore's 10-minute mandatory window: every read refreshes.
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
        stamp = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        doc = {"AccessKeyId": access, "SecretAccessKey": secret, "Token": token}
        return web.json_response({**doc, "Expiration": stamp})

    app = web.Application()
    app.router.add_get("/creds", credentials)
    runner, url = await serve(app)
    without_env_keys(aws_env)
    aws_env.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{url}/creds")
    aws_env.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", POD_TOKEN)
    try:
        config_dict["upstreams"] = [bedrock_upstream(refresh_seconds=0.2)]
        gw = await start_gateway(config_dict)
        client = sdk(gw)
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
        first = standin.seen[-1].access_key
        assert first in issued
        for _ in range(100):
            await asyncio.sleep(0.05)
            if len(issued) >= 4:
                break
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
        await client.close()
    finally:
        await runner.cleanup()
    later = standin.seen[-1].access_key
    assert later in issued
    assert later != first  # signed with the refreshed key and its session token
    assert standin.seen[-1].headers["X-Amz-Security-Token"].startswith("session-")


async def test_shared_credentials_file_profile(
    bedrock: tuple[BedrockStandIn, str],
    bedrock_upstream: BedrockUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    aws_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    standin, _ = bedrock
    standin.secrets["AKIAPROFILE000000001"] = ("profile-secret", None)
    creds = tmp_path / "credentials"
    creds.write_text(
        "[bedrock-gw]\naws_access_key_id = AKIAPROFILE000000001\n"
        "aws_secret_access_key = profile-secret\n"
    )
    without_env_keys(aws_env)
    aws_env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    config_dict["upstreams"] = [bedrock_upstream(profile="bedrock-gw")]
    gw = await start_gateway(config_dict)
    client = sdk(gw)
    await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
    await client.close()
    assert standin.seen[-1].access_key == "AKIAPROFILE000000001"


async def test_no_credentials_is_a_clear_503_and_nothing_is_sent(
    bedrock: tuple[BedrockStandIn, str],
    bedrock_upstream: BedrockUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    aws_env: pytest.MonkeyPatch,
) -> None:
    standin, _ = bedrock
    without_env_keys(aws_env)
    config_dict["upstreams"] = [bedrock_upstream()]
    gw = await start_gateway(config_dict)
    client = sdk(gw)
    with pytest.raises(anthropic.APIStatusError) as info:
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
    await client.close()
    assert info.value.status_code == 503
    assert "no AWS credentials" in str(info.value)
    assert standin.seen == []


STS_ANSWER = """<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAIRSA000000000001</AccessKeyId>
      <SecretAccessKey>irsa-secret</SecretAccessKey>
      <SessionToken>irsa-session</SessionToken>
      <Expiration>{expires}</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>system:serviceaccount:zdr:gateway</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/bedrock-gw/s</Arn>
      <AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""


async def test_web_identity_irsa(
    bedrock: tuple[BedrockStandIn, str],
    bedrock_upstream: BedrockUpstream,
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    aws_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """EKS IRSA: a projected service-account token exchanged at STS for role credentials."""
    standin, _ = bedrock
    standin.secrets["ASIAIRSA000000000001"] = ("irsa-secret", "irsa-session")
    exchanged: list[str] = []

    async def sts(request: web.Request) -> web.Response:
        form = await request.post()
        assert form["Action"] == "AssumeRoleWithWebIdentity"
        assert form["RoleArn"] == "arn:aws:iam::123456789012:role/bedrock-gw"
        exchanged.append(str(form["WebIdentityToken"]))
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        body = STS_ANSWER.format(expires=expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return web.Response(text=body, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/", sts)
    runner, url = await serve(app)
    token = tmp_path / "token"
    token.write_text("projected-service-account-jwt")
    without_env_keys(aws_env)
    aws_env.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/bedrock-gw")
    aws_env.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    aws_env.setenv("AWS_ENDPOINT_URL_STS", url)
    aws_env.setenv("AWS_REGION", "eu-central-1")
    try:
        config_dict["upstreams"] = [bedrock_upstream()]
        gw = await start_gateway(config_dict)
        client = sdk(gw)
        await client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=PROMPT)
        await client.close()
    finally:
        await runner.cleanup()
    assert exchanged == ["projected-service-account-jwt"]
    assert standin.seen[-1].access_key == "ASIAIRSA000000000001"
