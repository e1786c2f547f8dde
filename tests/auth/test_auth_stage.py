"""The auth stage and scope checks through the real gateway, with the official anthropic SDK."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import anthropic
import pytest
from anthropic.types import MessageParam

from gateway.auth.stage import MESSAGE
from tests.auth.auth_helpers import Signer
from tests.conftest import Gateway, StartGateway, Upstream

PROMPT: list[MessageParam] = [{"role": "user", "content": "Hi"}]
MSG = "/v1/messages"


@pytest.fixture
def auth_config(config_dict: dict[str, Any], signer: Signer) -> dict[str, Any]:
    config_dict["auth"] = {
        "signing_keys": [{"kid": signer.kid, "public_key_file": str(signer.public_path)}],
        "revoked": ["revoked-1"],
    }
    config_dict["metrics"] = {"teams": ["research"]}
    return config_dict


@pytest.fixture
async def gw(start_gateway: StartGateway, auth_config: dict[str, Any]) -> Gateway:
    return await start_gateway(auth_config)


Client = Callable[[str], Awaitable[anthropic.AsyncAnthropic]]


@pytest.fixture
async def client(gw: Gateway) -> AsyncIterator[Client]:
    made: list[anthropic.AsyncAnthropic] = []

    async def make(key: str) -> anthropic.AsyncAnthropic:
        c = anthropic.AsyncAnthropic(
            base_url=gw.url,
            api_key=key,
            max_retries=0,
            http_client=anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
        )
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


SCOPED = {
    "endpoints": ("messages", "models"),
    "models": ("claude-sonnet-*",),
    "max_tokens": 512,
}

# endpoint x model x max_tokens → None (allowed) or the scope named in the 403.
MATRIX = [
    ("messages", "claude-sonnet-5-5", 512, None),
    ("messages", "claude-sonnet-5-5", 513, "max_tokens"),
    ("messages", "claude-haiku-5-5", 16, "model"),
    ("messages", "claude-sonnet-5-5-CANARY", 16, None),  # glob: sonnet-* matches
    ("count_tokens", "claude-sonnet-5-5", None, "endpoint count_tokens"),
    ("models", None, None, None),
]


@pytest.mark.parametrize(("endpoint", "model", "max_tokens", "missing"), MATRIX)
async def test_scope_matrix(
    client: Client,
    signer: Signer,
    upstream: Upstream,
    endpoint: str,
    model: str | None,
    max_tokens: int | None,
    missing: str | None,
) -> None:
    c = await client(signer.issue_live(**SCOPED))
    before = len(upstream.stub.requests)

    async def call() -> object:
        if endpoint == "messages":
            assert model is not None
            assert max_tokens is not None
            return await c.messages.create(model=model, max_tokens=max_tokens, messages=PROMPT)
        if endpoint == "count_tokens":
            assert model is not None
            return await c.messages.count_tokens(model=model, messages=PROMPT)
        return [m.id async for m in c.models.list()]

    if missing is None:
        assert await call()
        assert len(upstream.stub.requests) == before + 1
        return
    with pytest.raises(anthropic.PermissionDeniedError) as exc:
        await call()
    assert f"missing scope: {missing}" in exc.value.message
    assert "CANARY" not in exc.value.message
    assert len(upstream.stub.requests) == before  # refused before any upstream connection


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda s: "sk-ant-not-a-gateway-key", "malformed"),
        (lambda s: s.issue_live(expires_at=int(time.time()) - 3600), "expired"),
        (lambda s: s.issue_live(not_before=int(time.time()) + 3600), "not_yet_valid"),
        (lambda s: s.issue_live(key_id="revoked-1"), "revoked"),
        (lambda s: "zdr_" + "A" * 7000, "too_large"),
    ],
    ids=["garbage", "expired", "not yet valid", "revoked", "oversized"],
)
async def test_bad_credentials_get_one_generic_401(
    client: Client, gw: Gateway, signer: Signer, upstream: Upstream, make: Any, reason: str
) -> None:
    c = await client(make(signer))
    with pytest.raises(anthropic.AuthenticationError) as exc:
        await c.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=PROMPT)
    body: Any = exc.value.body
    # No oracle: the same type and text whatever check failed.
    assert body["error"] == {"type": "authentication_error", "message": MESSAGE}
    assert gw.sample("zdr_gateway_auth_failures_total", reason=reason) == 1
    assert upstream.stub.requests == []


async def raw(
    gw: Gateway, path: str, headers: dict[str, str], body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + path,
            json=body or {"model": "claude-sonnet-5-5", "max_tokens": 8, "messages": PROMPT},
            headers={"anthropic-version": "2023-06-01", **headers},
            ssl=gw.client_ssl(),
        ) as resp,
    ):
        return resp.status, json.loads(await resp.read())


async def test_missing_credential(gw: Gateway) -> None:
    status, body = await raw(gw, MSG, {})
    assert status == 401
    assert body["error"] == {"type": "authentication_error", "message": MESSAGE}
    assert gw.sample("zdr_gateway_auth_failures_total", reason="missing") == 1


async def test_key_in_query_string_is_refused(gw: Gateway, signer: Signer) -> None:
    key = signer.issue_live()
    status, body = await raw(gw, f"{MSG}?api_key={key}", {})
    assert status == 401
    assert body["error"]["message"] == MESSAGE
    status, _ = await raw(gw, f"{MSG}?beta=true&key={key}", {"x-api-key": key})
    assert status == 401
    assert gw.sample("zdr_gateway_auth_failures_total", reason="query_credential") == 2


async def test_two_credentials_that_disagree(gw: Gateway, signer: Signer) -> None:
    a, b = signer.issue_live(key_id="a"), signer.issue_live(key_id="b")
    status, _ = await raw(gw, MSG, {"x-api-key": a, "authorization": f"Bearer {b}"})
    assert status == 401
    assert gw.sample("zdr_gateway_auth_failures_total", reason="ambiguous_credential") == 1
    status, _ = await raw(gw, MSG, {"x-api-key": a, "authorization": f"Bearer {a}"})
    assert status == 200


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
async def test_client_credential_never_reaches_upstream(
    gw: Gateway, signer: Signer, upstream: Upstream, header: str
) -> None:
    key = signer.issue_live()
    value = key if header == "x-api-key" else f"Bearer {key}"
    status, _ = await raw(gw, MSG, {header: value})
    assert status == 200
    seen = upstream.stub.requests[-1]
    assert seen.headers.get("x-api-key") == upstream.stub.api_key
    assert "authorization" not in {k.lower() for k in seen.headers}
    assert key not in json.dumps(seen.headers)
    assert key.encode() not in seen.body


async def test_teams_label_declared_or_other(client: Client, gw: Gateway, signer: Signer) -> None:
    for team in ("research", "undeclared-team"):
        c = await client(signer.issue_live(team=team, key_id=f"k-{team}"))
        await c.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=PROMPT)
    labels = {"provider": "anthropic", "route": "messages", "status_class": "2xx", "code": "200"}
    assert gw.sample("zdr_gateway_requests_total", team="research", **labels) == 1
    assert gw.sample("zdr_gateway_requests_total", team="other", **labels) == 1
    text = gw.registry.get_sample_value  # key ids never become label values
    assert text("zdr_gateway_requests_total", {**labels, "team": "k-research"}) is None


async def test_clamp_mode_rewrites_max_tokens(
    start_gateway: StartGateway, auth_config: dict[str, Any], signer: Signer, upstream: Upstream
) -> None:
    auth_config["auth"]["max_tokens_over_ceiling"] = "clamp"
    gw = await start_gateway(auth_config)
    status, _ = await raw(
        gw,
        MSG,
        {"x-api-key": signer.issue_live(max_tokens=100)},
        {"model": "claude-sonnet-5-5", "max_tokens": 5000, "messages": PROMPT},
    )
    assert status == 200
    assert json.loads(upstream.stub.requests[-1].body)["max_tokens"] == 100


async def test_wrong_key_file_fails_startup(
    start_gateway: StartGateway, auth_config: dict[str, Any], tmp_path: Any
) -> None:
    from gateway.auth.keyset import KeyLoadError

    bad = tmp_path / "bad.pub.pem"
    bad.write_text("nope")
    auth_config["auth"]["signing_keys"][0]["public_key_file"] = str(bad)
    with pytest.raises(KeyLoadError, match="not a PEM public key"):
        await start_gateway(auth_config)


async def test_openai_route_errors_in_openai_shape(
    start_gateway: StartGateway, auth_config: dict[str, Any], signer: Signer, upstream: Upstream
) -> None:
    import openai

    first = auth_config["upstreams"][0]
    auth_config["upstreams"].append(
        {**first, "name": "openai", "provider": "openai", "prefix": "/openai"}
    )
    gw = await start_gateway(auth_config)
    chat = [{"role": "user", "content": "Hi"}]
    keys = [
        ("zdr_bogus.bogus.bogus", openai.AuthenticationError),
        (signer.issue_live(endpoints=("messages",)), openai.PermissionDeniedError),
    ]
    for key, error in keys:
        client = openai.AsyncOpenAI(
            base_url=gw.url + "/openai/v1",
            api_key=key,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
        )
        try:
            with pytest.raises(error) as exc:
                await client.chat.completions.create(model="gpt-5", messages=chat)  # type: ignore[arg-type]
        finally:
            await client.close()
        assert isinstance(exc.value.body, dict)
    assert "endpoint chat_completions" in str(exc.value.body)
    assert upstream.stub.requests == []


@pytest.mark.parametrize(
    ("clamp", "body", "sent_field", "sent", "status"),
    [
        # OpenAI spells the cap its own ways; each is held to the key's ceiling.
        (False, {"max_completion_tokens": 5000}, "max_completion_tokens", None, 403),
        (False, {"max_tokens": 5000}, "max_tokens", None, 403),
        (True, {"max_completion_tokens": 5000}, "max_completion_tokens", 100, 200),
        (False, {"max_completion_tokens": 50}, "max_completion_tokens", 50, 200),
        # No cap at all: the model could run to its own maximum, so the ceiling is sent.
        (False, {}, "max_completion_tokens", 100, 200),
        # Two caps that could disagree: refused before anything is sent.
        (False, {"max_completion_tokens": 50, "max_tokens": 5000}, "max_tokens", None, 400),
    ],
)
async def test_openai_output_caps_held_to_the_ceiling(
    start_gateway: StartGateway,
    auth_config: dict[str, Any],
    signer: Signer,
    openai_stub: tuple[Any, str],
    cert_files: dict[str, str],
    clamp: bool,
    body: dict[str, Any],
    sent_field: str,
    sent: int | None,
    status: int,
) -> None:
    stub, url = openai_stub
    auth_config["upstreams"].append(
        {
            "name": "openai",
            "provider": "openai",
            "url": url,
            "api_key": stub.api_key,
            "ca_file": cert_files["ca_file"],
            "prefix": "/openai",
        }
    )
    if clamp:
        auth_config["auth"]["max_tokens_over_ceiling"] = "clamp"
    gw = await start_gateway(auth_config)
    key = signer.issue_live(endpoints=("chat_completions",), models=("gpt-*",), max_tokens=100)
    got, _ = await raw(
        gw,
        "/openai/v1/chat/completions",
        {"authorization": f"Bearer {key}"},
        {"model": "gpt-5", "messages": PROMPT, **body},
    )
    assert got == status
    if sent is None:
        assert stub.requests == []
    else:
        assert json.loads(stub.requests[-1].body)[sent_field] == sent


async def test_models_list_is_cut_to_the_keys_model_scopes(
    client: Client, signer: Signer, upstream: Upstream
) -> None:
    """SDK models.list() (and Claude Code's gateway model discovery, GET /v1/models?limit=
    1000) offers only what the key may use; a model outside the scope is a 403."""
    scoped = await client(signer.issue_live(models=("claude-sonnet-*",)))
    page = await scoped.models.list(limit=1000)
    assert [m.id for m in page.data] == ["claude-sonnet-5-5"]
    assert page.first_id == page.last_id == "claude-sonnet-5-5"
    assert upstream.stub.requests[-1].query == "limit=1000"
    assert (await scoped.models.retrieve("claude-sonnet-5-5")).id == "claude-sonnet-5-5"
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        await scoped.models.retrieve("claude-haiku-5-5")
    assert "missing scope: model" in str(info.value)
    unscoped = await client(signer.issue_live(models=None))
    ids = [m.id async for m in unscoped.models.list()]
    assert ids == ["claude-sonnet-5-5", "claude-haiku-5-5"]
