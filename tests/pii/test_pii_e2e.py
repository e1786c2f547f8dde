"""Through a real gateway and the official SDKs: originals never reach the upstream
(which keeps only hashes), and come back in the streamed and JSON answers."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from gateway.pii import detect
from gateway.state import PII
from tests.conftest import Gateway, StartGateway
from tests.pii.echo_upstream import EchoUpstream, serving
from tests.support import audit as support_audit
from tests.support.eventually import eventually

EMAIL = "zq.canary.7f3a@example.org"
PHONE = "+1 415-555-2671"
CARD = "4111 1111 1111 1111"
CLIENT = "Zyxwvut Holdings"
ORIGINALS = (EMAIL, PHONE, CARD, CLIENT)
MODEL = "claude-sonnet-5-5"
SEEN = ("[EMAIL_1]", "[CARD]", "copy each one exactly")


@pytest.fixture
async def echo(cert_files: dict[str, str]) -> AsyncIterator[tuple[EchoUpstream, str]]:
    # The originals' lengths, and those of what the tests expect the upstream saw instead.
    stub = EchoUpstream({len(v) for v in (*ORIGINALS, *SEEN)})
    async with serving(stub, cert_files) as url:
        yield stub, url


@pytest.fixture
def pii_config(
    config_dict: dict[str, Any], echo: tuple[EchoUpstream, str], tmp_path: Path
) -> dict[str, Any]:
    cfg = dict(config_dict)
    base = config_dict["upstreams"][0]
    cfg["upstreams"] = [
        {**base, "url": echo[1]},
        {**base, "name": "openai", "provider": "openai", "url": echo[1], "prefix": "/openai"},
    ]
    cfg["pii"] = {
        "default": {
            "email": "pseudonymise",
            "phone": "pseudonymise",
            "card": "mask",
            "terms": "pseudonymise",
        },
        "terms": {"client": [CLIENT]},
        "system_hint": True,
    }
    cfg["audit"] = support_audit.file_sink(tmp_path / "audit")
    cfg["logging"] = {"level": "debug", "access_log": True}
    return cfg


Call = Callable[[], Coroutine[Any, Any, Any]]


def client(gw: Gateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=gw.url,
        api_key="client-key",
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
    )


def openai_client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=gw.url + "/openai/v1",
        api_key="client-key",
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(verify=gw.client_ssl()),
    )


PROMPT = f"Write to {EMAIL} (phone {PHONE}, card {CARD}) about {CLIENT}; cc {EMAIL}."


async def test_messages_stream_text_and_tool_use_come_back_with_originals(
    start_gateway: StartGateway,
    pii_config: dict[str, Any],
    echo: tuple[EchoUpstream, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    gw = await start_gateway(pii_config)
    async with (
        client(gw) as c,
        c.messages.stream(
            model=MODEL,
            max_tokens=64,
            system=f"You help {CLIENT}.",
            messages=[{"role": "user", "content": PROMPT}],
        ) as stream,
    ):
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    stub = echo[0]
    # The upstream saw placeholders, never an original (mask included).
    for value in ORIGINALS:
        assert not stub.saw(value), value
    assert stub.saw("[EMAIL_1]")
    assert stub.saw("[CARD]")
    assert stub.saw("copy each one exactly")  # the system-prompt line
    # Stable per value: the email twice, one placeholder; the answer has the originals.
    assert text == "Reply for [CLIENT_1], [EMAIL_1], [PHONE_1], [CARD].".replace(
        "[CLIENT_1]", CLIENT
    ).replace("[EMAIL_1]", EMAIL).replace("[PHONE_1]", PHONE)
    tool = final.content[1]
    assert tool.type == "tool_use"
    assert tool.input == {"to": CLIENT, "all": [CLIENT, EMAIL, PHONE, "[CARD]"]}
    # Counts per category in the audit event and metrics; no value anywhere.
    events = await eventually(lambda: support_audit.events(tmp_path / "audit"))
    audit = json.dumps(events)
    event = events[-1]
    assert event["pii"] == {"terms": 2, "email": 2, "phone": 1, "card": 1}
    assert gw.sample("zdr_gateway_pii_values_total", category="email", mode="pseudonymise") == 2
    assert gw.sample("zdr_gateway_pii_values_total", category="card", mode="mask") == 1
    async with aiohttp.ClientSession() as http, http.get(gw.admin_url + "/metrics") as r:
        metrics = await r.text()
    # The gateway's own log lines (the SDK's debug log quotes the request it sends).
    logs = "\n".join(
        r.getMessage() + json.dumps(r.__dict__, default=str)
        for r in caplog.records
        if not r.name.startswith(("anthropic", "openai", "httpx", "httpcore"))
    )
    assert "request" in logs  # the access line was captured
    leaks = [logs, audit, metrics, *files_under(tmp_path)]
    for value in ORIGINALS:
        assert not any(value in where for where in leaks), value


def files_under(root: Path) -> list[str]:
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            out.append((Path(dirpath) / name).read_bytes().decode(errors="replace"))
    return out


async def test_json_answer_comes_back_with_originals(
    start_gateway: StartGateway, pii_config: dict[str, Any], echo: tuple[EchoUpstream, str]
) -> None:
    gw = await start_gateway(pii_config)
    async with client(gw) as c:
        message = await c.messages.create(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": PROMPT}]
        )
    text_block, tool_block = message.content[0], message.content[1]
    assert text_block.type == "text"
    assert tool_block.type == "tool_use"
    assert text_block.text == f"Reply for {EMAIL}, {PHONE}, [CARD], {CLIENT}."
    assert isinstance(tool_block.input, dict)
    assert tool_block.input["to"] == EMAIL
    assert not echo[0].saw(EMAIL)


async def test_tool_use_input_and_tool_result_are_pseudonymised(
    start_gateway: StartGateway, pii_config: dict[str, Any], echo: tuple[EchoUpstream, str]
) -> None:
    gw = await start_gateway(pii_config)
    messages: Any = [
        {"role": "user", "content": "send it"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "send", "input": {"to": EMAIL}}
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": f"sent to {PHONE}"}],
                }
            ],
        },
    ]
    c = client(gw)
    async with c, c.messages.stream(model=MODEL, max_tokens=64, messages=messages) as stream:
        final = await stream.get_final_message()
    assert not echo[0].saw(EMAIL)
    assert not echo[0].saw(PHONE)
    tool_block = final.content[1]
    assert tool_block.type == "tool_use"
    tool_input: Any = tool_block.input
    assert sorted(tool_input["all"]) == sorted([EMAIL, PHONE])
    assert tool_input["to"] in (EMAIL, PHONE)


async def test_openai_chat_stream_content_and_tool_call_arguments(
    start_gateway: StartGateway, pii_config: dict[str, Any], echo: tuple[EchoUpstream, str]
) -> None:
    gw = await start_gateway(pii_config)
    oc = openai_client(gw)
    async with oc:
        stream = await oc.chat.completions.create(
            model="gpt-5", stream=True, messages=[{"role": "user", "content": PROMPT}]
        )
        content, args = "", ""
        async for chunk in stream:
            delta = chunk.choices[0].delta if chunk.choices else None
            if delta is None:
                continue
            content += delta.content or ""
            for call in delta.tool_calls or []:
                args += call.function.arguments or "" if call.function else ""
    assert not echo[0].saw(EMAIL)
    assert content == f"Reply for {EMAIL}, {PHONE}, [CARD], {CLIENT}."
    assert json.loads(args) == {"to": EMAIL}


async def test_openai_responses_stream_text_and_function_call_arguments(
    start_gateway: StartGateway, pii_config: dict[str, Any], echo: tuple[EchoUpstream, str]
) -> None:
    gw = await start_gateway(pii_config)
    oc = openai_client(gw)
    async with oc, oc.responses.stream(model="gpt-5", input=PROMPT) as stream:
        text, args = "", ""
        async for event in stream:
            if event.type == "response.output_text.delta":
                text += event.delta
            elif event.type == "response.function_call_arguments.delta":
                args += event.delta
        final = await stream.get_final_response()
    assert not echo[0].saw(EMAIL)
    assert echo[0].saw("[EMAIL_1]")  # the stand-in saw placeholders: the deltas were split
    want = f"Reply for {EMAIL}, {PHONE}, [CARD], {CLIENT}."
    assert text == want
    assert json.loads(args) == {"to": EMAIL}
    assert final.output_text == want


async def test_block_refuses_naming_the_category_and_nothing_is_sent(
    start_gateway: StartGateway, pii_config: dict[str, Any], echo: tuple[EchoUpstream, str]
) -> None:
    pii_config["pii"]["default"]["phone"] = "block"
    gw = await start_gateway(pii_config)
    async with client(gw) as c:
        with pytest.raises(anthropic.BadRequestError) as info:
            await c.messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": PROMPT}]
            )
    err = info.value.body["error"]  # type: ignore[index]
    assert err["type"] == "invalid_request_error"
    assert "phone number" in err["message"]
    assert PHONE not in json.dumps(info.value.body)
    assert echo[0].body_hashes == []
    assert gw.sample("zdr_gateway_pii_values_total", category="phone", mode="block") == 1


async def test_a_detector_error_refuses_the_request(
    start_gateway: StartGateway, pii_config: dict[str, Any], echo: tuple[EchoUpstream, str]
) -> None:
    gw = await start_gateway(pii_config)
    runtime = gw.running.app[PII]

    def broken(scan: detect.Scan) -> list[detect.Span]:
        raise RuntimeError(f"boom {scan.text}")

    runtime.detectors._finders["email"] = broken
    async with client(gw) as c:
        with pytest.raises(anthropic.BadRequestError) as info:
            await c.messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": PROMPT}]
            )
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "could not be checked for an email address" in str(info.value)
    assert EMAIL not in json.dumps(info.value.body)
    assert echo[0].body_hashes == []
    assert gw.sample("zdr_gateway_pii_detector_errors_total", category="email") == 1


async def test_a_team_with_pii_off_sends_the_body_unchanged(
    start_gateway: StartGateway, pii_config: dict[str, Any], echo: tuple[EchoUpstream, str]
) -> None:
    pii_config["pii"]["teams"] = {"anonymous": "off"}
    gw = await start_gateway(pii_config)
    body = json.dumps(
        {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": PROMPT}]}
    ).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + "/v1/messages",
            data=body,
            headers={
                "content-type": "application/json",
                "x-api-key": "k",
                "anthropic-version": "2023-06-01",
            },
            ssl=gw.client_ssl(),
        ) as r,
    ):
        answer = await r.json()
    assert echo[0].body_hashes == [hashlib.sha256(body).hexdigest()]
    assert echo[0].saw(EMAIL)  # proves the hashes would have shown a leak above
    assert answer["content"][0]["text"] == "Reply for ."
