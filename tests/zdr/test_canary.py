"""Canary proof: content sent or returned on every path is retained nowhere.

Each test sends unique canaries through one path of a real gateway process
(tests/zdr/conftest.py) and then asserts that the canary appears in none of:
its stdout/stderr at DEBUG level, the audit file, /metrics, /zdr/posture, any
file under its TMPDIR or HOME — and not in error responses the gateway wrote.
Where the canary travels to the upstream, the test also checks that it did,
so that its absence elsewhere means something.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.auth import stage as auth_stage
from gateway.auth import tokens
from gateway.auth.principal import Limits
from gateway.serve import harden
from tests.support import audit as support_audit
from tests.support.eventually import eventually
from tests.zdr.conftest import (
    AUDIT_KEY,
    GENEROUS,
    HARNESS_KEY_ID,
    KID,
    LIMITED_TEAM,
    TEAM,
    Proof,
    canary,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

MODEL = "claude-sonnet-5-5"


def message_body(secret: str, **extra: object) -> dict[str, object]:
    return {
        "model": MODEL,
        "max_tokens": 16,
        "system": f"system prompt {secret}",
        "tools": [
            {
                "name": "lookup",
                "description": f"tool description {secret}",
                "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
            }
        ],
        "messages": [
            {"role": "user", "content": f"prompt {secret}"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": secret}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": f"res {secret}"}
                ],
            },
        ],
        **extra,
    }


def headers_with(secret: str) -> dict[str, str]:
    return {
        "user-agent": f"sdk/{secret}",
        "x-custom-trace": secret,
        "cookie": f"session={secret}",
        "x-forwarded-for": secret,
        "referer": f"https://app.example/{secret}",
    }


async def test_success_json(gw: Proof) -> None:
    secret = canary("json")
    status, body = await gw.call(
        "POST", "/v1/messages", json=message_body(secret), headers=headers_with(secret)
    )
    assert status == 200, body
    assert gw.reached_upstream(secret)
    assert not gw.reached_upstream(gw.key)  # the client's key never travels upstream
    assert await gw.leaks(secret) == []


async def test_bearer_key_is_not_forwarded(gw: Proof) -> None:
    """The SDKs' other credential style: the key as a Bearer token is accepted, and the
    upstream sees the gateway's own API key only."""
    secret = canary("bearer-ok")
    status, body = await gw.call(
        "POST",
        "/v1/messages",
        json=message_body(secret),
        headers={"x-api-key": None, "authorization": f"Bearer {gw.key}"},
    )
    assert status == 200, body
    seen = [r for r in gw.stub.requests if secret.encode() in r.body]
    assert len(seen) == 1
    assert seen[0].headers.get("x-api-key") == gw.stub.api_key
    assert "authorization" not in {h.lower() for h in seen[0].headers}
    assert not gw.reached_upstream(gw.key)
    assert await gw.leaks(secret) == []


async def test_model_name(gw: Proof) -> None:
    secret = canary("model")
    for model in (f"claude-{secret}", secret, f"claude sonnet {secret}"):
        status, _ = await gw.call(
            "POST", "/v1/messages", json={**message_body("x"), "model": model}
        )
        assert status == 200
    assert await gw.leaks(secret) == []


async def test_completion_json(gw: Proof) -> None:
    secret = canary("completion")
    gw.stub.behaviour.reply = f"the answer is {secret} indeed"
    status, body = await gw.call("POST", "/v1/messages", json=message_body("x"))
    assert status == 200
    assert secret in body.decode()
    assert await gw.leaks(secret) == []


async def test_streaming_prompt_and_sse_events(gw: Proof) -> None:
    secret = canary("stream")
    gw.stub.behaviour.reply = f"streamed {secret} words {secret}"
    status, body = await gw.call(
        "POST", "/v1/messages", json=message_body(secret, stream=True), headers=headers_with(secret)
    )
    assert status == 200
    assert b"event: message_stop" in body
    assert secret in body.decode()
    assert gw.reached_upstream(secret)
    assert await gw.leaks(secret) == []


async def test_count_tokens_and_models(gw: Proof) -> None:
    secret = canary("count")
    status, _ = await gw.call("POST", "/v1/messages/count_tokens", json=message_body(secret))
    assert status == 200
    status, _ = await gw.call("GET", f"/v1/models?limit=5&after_id={secret}&x={secret}")
    assert status == 200
    assert await gw.leaks(secret) == []


@pytest.mark.parametrize(
    "extra",
    [
        {"mcp_servers": [{"type": "url", "url": "https://mcp.example/CANARY", "name": "CANARY"}]},
        {"tools": [{"type": "code_execution_20250825", "name": "CANARY"}]},
        {"container": "CANARY"},
        {"tools": [{"type": "web_fetch_20260209", "name": "CANARY"}]},
        {"tools": [{"name": "CANARY", "input_schema": {}, "allowed_callers": ["code_execution"]}]},
        {"tools": [{"type": "mcp_toolset", "mcp_server_name": "CANARY"}]},
    ],
    ids=["mcp_servers", "code_execution", "container", "dynamic_filtering", "ptc", "mcp_toolset"],
)
async def test_policy_refusal(gw: Proof, extra: dict[str, object]) -> None:
    secret = canary("policy")
    body = json.loads(json.dumps(message_body(secret, **extra)).replace("CANARY", secret))
    status, resp = await gw.call("POST", "/v1/messages", json=body, headers=headers_with(secret))
    assert status == 400
    assert json.loads(resp)["error"]["type"] == "invalid_request_error"
    assert secret not in resp.decode()
    assert not gw.reached_upstream(secret)
    assert await gw.leaks(secret) == []


async def test_policy_refusal_beta_header_and_endpoint(gw: Proof) -> None:
    secret = canary("beta").lower()
    status, resp = await gw.call(
        "POST",
        "/v1/messages",
        json=message_body(secret),
        headers={"anthropic-beta": "files-api-2025-04-14"},
    )
    assert status == 400
    status2, resp2 = await gw.call(
        "POST", f"/v1/files?beta=true&name={secret}", data=secret.encode() * 10
    )
    assert status2 == 400
    for r in (resp, resp2):
        assert secret not in r.decode()
    assert not gw.reached_upstream(secret)
    assert await gw.leaks(secret) == []


async def test_unlisted_beta_is_forwarded_counted_never_recorded(gw: Proof) -> None:
    """The default (policy.betas.unlisted: allow): an unknown beta goes upstream verbatim,
    as Anthropic asks of gateways in front of Claude Code; only its kind is counted."""
    secret = canary("beta").lower()
    status, _ = await gw.call(
        "POST", "/v1/messages", json=message_body("hi"), headers={"anthropic-beta": secret}
    )
    assert status == 200
    assert gw.stub.requests[-1].headers["anthropic-beta"] == secret
    assert await gw.leaks(secret) == []


REFUSED = "malformed request refused"  # gateway/serve/quiet.py's fixed log line


def _jws(
    key: Ed25519PrivateKey | str, payload: dict[str, object], kid: str = KID, alg: str = "EdDSA"
) -> str:
    """A gateway-key-shaped credential with any header and claims (no validation)."""
    return tokens.PREFIX + jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def _claims(secret: str, **over: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": tokens.ISSUER,
        "aud": tokens.AUDIENCE,
        "jti": secret,
        "team": secret,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        **over,
    }


_FORGER = Ed25519PrivateKey.generate()  # not the harness's signing key
_HMAC_SECRET = "s" * 64  # HS256 "signed" with a long secret (no short-key warning)
Credential = tuple[str, dict[str, str | None]]  # (path, headers)
# Each case: the canary as (part of) a credential, and the check that must refuse it.
CREDENTIALS: dict[str, tuple[str, Callable[[Proof, str], Credential]]] = {
    "x-api-key": ("malformed", lambda gw, s: ("", {"x-api-key": s})),
    "bearer": (
        "malformed",
        lambda gw, s: ("", {"x-api-key": None, "authorization": f"Bearer {s}"}),
    ),
    "same-in-both": (
        "malformed",
        lambda gw, s: ("", {"x-api-key": s, "authorization": f"Bearer {s}"}),
    ),
    "basic-scheme": (
        "malformed",
        lambda gw, s: ("", {"x-api-key": None, "authorization": f"Basic {s}"}),
    ),
    "valid-key-plus-bearer": (
        "ambiguous_credential",
        lambda gw, s: ("", {"authorization": f"Bearer {s}"}),
    ),
    "prefixed-garbage": ("malformed", lambda gw, s: ("", {"x-api-key": f"zdr_{s}"})),
    "oversize": ("too_large", lambda gw, s: ("", {"x-api-key": (f"zdr_{s}" * 300)[:7000]})),
    "forged-signature": (
        "bad_signature",
        lambda gw, s: ("", {"x-api-key": _jws(_FORGER, _claims(s))}),
    ),
    "canary-kid": (
        "unknown_kid",
        lambda gw, s: ("", {"x-api-key": _jws(gw.signing_key, _claims(s), kid=s)}),
    ),
    "hs256": (
        "bad_algorithm",
        lambda gw, s: ("", {"x-api-key": _jws(_HMAC_SECRET, _claims(s), alg="HS256")}),
    ),
    "canary-issuer": (
        "wrong_issuer",
        lambda gw, s: ("", {"x-api-key": _jws(gw.signing_key, _claims(s, iss=s))}),
    ),
    "canary-team-invalid": (
        "bad_claims",
        lambda gw, s: ("", {"x-api-key": _jws(gw.signing_key, _claims(s, team=f"t {s}"))}),
    ),
    "expired": (
        "expired",
        lambda gw, s: ("", {"x-api-key": gw.issue(s, team=s, expires_at=int(time.time()) - 3600)}),
    ),
    "query-api-key": ("query_credential", lambda gw, s: (f"?api_key={s}", {})),
    "query-any-name": ("query_credential", lambda gw, s: (f"?q=zdr_{s}", {})),
    "query-jwt": ("query_credential", lambda gw, s: (f"?beta=true&x=eyJ{s}", {})),
}


@pytest.mark.parametrize("case", list(CREDENTIALS))
async def test_credentials_refused_without_a_trace(gw: Proof, case: str) -> None:
    """A canary as (part of) the credential: the same generic 401 whatever failed, and
    the canary is nowhere — not even in the 401 — and never travels upstream."""
    secret = canary(f"cred-{case}")
    reason, make = CREDENTIALS[case]
    query, headers = make(gw, secret)
    status, resp_headers, resp = await gw.send(
        "POST", "/v1/messages" + query, json=message_body(secret), headers=headers
    )
    assert status == 401, resp
    error = json.loads(resp)["error"]
    assert error == {"type": "authentication_error", "message": auth_stage.MESSAGE}
    assert secret not in resp.decode()
    assert not any(secret in v for v in resp_headers.values())
    event = await gw.audit_event(resp_headers["x-gateway-request-id"])
    # The check that fired (so the canary really went down that path), and no identity:
    # an unverified claim is never recorded as who called.
    assert (event["status"], event["reason"]) == (401, f"auth_{reason}")
    assert (event["key_id"], event["team"]) == (None, None)
    assert not gw.reached_upstream(secret)
    assert await gw.leaks(secret) == []


async def test_credential_longer_than_a_header_line(gw: Proof) -> None:
    """Over aiohttp's 8190-byte header line the HTTP parser refuses it (before any stage,
    so no audit event): its error quotes the line, the gateway's 400 must not."""
    secret = canary("longcred")
    headers = {"anthropic-version": "2023-06-01", "x-api-key": f"zdr_{secret}" * 300}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + "/v1/messages", json=message_body(secret), headers=headers, ssl=gw.ssl
        ) as resp,
    ):
        status, body = resp.status, await resp.read()
    assert status == 400
    assert secret not in body.decode()
    assert not gw.reached_upstream(secret)
    assert await gw.leaks(secret) == []


async def test_out_of_scope_model_and_endpoint(gw: Proof) -> None:
    """A valid key outside its scopes: 403 naming the scope, never the client's model."""
    secret = canary("scope")
    key = gw.issue("proof-scoped", models=(MODEL,), endpoints=("messages",), max_tokens=64)
    headers: dict[str, str | None] = {"x-api-key": key}
    cases = [  # (method, path, body, audit reason, audit model label)
        ("POST", "/v1/messages", {**message_body(secret), "model": secret}, "scope_model", "other"),
        (
            "POST",
            "/v1/messages",
            message_body(secret, model=f"claude-{secret}"),
            "scope_model",
            "other",
        ),
        ("POST", "/v1/messages", message_body(secret, max_tokens=65), "scope_max_tokens", MODEL),
        ("GET", f"/v1/models?after_id={secret}", None, "scope_endpoint", "none"),
    ]
    for method, path, body, reason, label in cases:
        status, resp_headers, resp = await gw.send(method, path, json=body, headers=headers)
        assert status == 403, resp
        assert json.loads(resp)["error"]["type"] == "permission_error"
        assert secret not in resp.decode()
        assert not any(secret in v for v in resp_headers.values())
        event = await gw.audit_event(resp_headers["x-gateway-request-id"])
        assert (event["status"], event["reason"], event["model"]) == (403, reason, label)
        assert (event["key_id"], event["team"]) == ("proof-scoped", TEAM)
    assert not gw.reached_upstream(secret)
    assert await gw.leaks(secret) == []


async def test_rate_limit_path(gw: Proof) -> None:
    """Rate-limit refusal: a key with rpm=1 gets one request, then a 429 with retry-after;
    the canary of the admitted and of the refused request is nowhere."""
    secret = canary("ratelimit")
    headers: dict[str, str | None] = {
        "x-api-key": gw.issue("proof-rpm1", LIMITED_TEAM, limits=Limits(rpm=1))
    }
    first = await gw.send("POST", "/v1/messages", json=message_body(secret), headers=headers)
    second = await gw.send("POST", "/v1/messages", json=message_body(secret), headers=headers)
    assert first[0] == 200, first[2]
    status, resp_headers, resp = second
    assert status == 429, resp
    error = json.loads(resp)["error"]
    assert error["type"] == "rate_limit_error"
    assert "1 requests per minute for this API key" in error["message"]
    assert int(resp_headers["retry-after"]) >= 1
    assert resp_headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert secret not in resp.decode()
    assert not any(secret in v for v in resp_headers.values())
    # Only the admitted request travelled; the refused one stopped at the gateway.
    assert sum(secret.encode() in r.body for r in gw.stub.requests) == 1
    for (code, hdrs, _), reason in ((first, None), (second, "rate_limited")):
        event = await gw.audit_event(hdrs["x-gateway-request-id"])
        assert (event["status"], event["reason"]) == (code, reason)
        assert (event["key_id"], event["team"]) == ("proof-rpm1", LIMITED_TEAM)
    assert await gw.leaks(secret) == []


async def test_output_token_limit_path(gw: Proof) -> None:
    """max_tokens above a key's output tokens/min can never fit: 429, no retry."""
    secret = canary("outputtpm")
    key = gw.issue("proof-otpm", LIMITED_TEAM, limits=Limits(output_tpm=8))
    status, resp_headers, resp = await gw.send(
        "POST", "/v1/messages", json=message_body(secret), headers={"x-api-key": key}
    )
    assert status == 429, resp
    assert json.loads(resp)["error"]["type"] == "rate_limit_error"
    assert resp_headers["x-should-retry"] == "false"
    assert "retry-after" not in resp_headers
    assert secret not in resp.decode()
    event = await gw.audit_event(resp_headers["x-gateway-request-id"])
    assert (event["key_id"], event["team"], event["reason"]) == (
        "proof-otpm",
        LIMITED_TEAM,
        "rate_limited",
    )
    assert not gw.reached_upstream(secret)
    assert await gw.leaks(secret) == []


async def test_malformed_json(gw: Proof) -> None:
    secret = canary("badjson")
    raw = b'{"model": "' + secret.encode() + b'", "messages": [ {"content": "' + secret.encode()
    status, resp = await gw.call(
        "POST", "/v1/messages", data=raw, headers={"content-type": "application/json"}
    )
    assert status == 400
    assert secret not in resp.decode()
    assert await gw.leaks(secret) == []


async def test_wrong_content_type_and_unknown_path(gw: Proof) -> None:
    secret = canary("path")
    status, resp = await gw.call(
        "POST", "/v1/messages", data=secret.encode(), headers={"content-type": f"text/{secret}"}
    )
    assert status == 415
    assert secret not in resp.decode()
    status, resp = await gw.call("GET", f"/v1/{secret}?q={secret}")
    assert status == 404
    assert secret not in resp.decode()
    status, resp = await gw.call("DELETE", f"/v1/messages?{secret}=1")
    assert status == 405
    assert secret not in resp.decode()
    assert await gw.leaks(secret) == []


async def test_oversize_body(gw: Proof) -> None:
    secret = canary("oversize")
    big = message_body(secret)
    big["messages"] = [{"role": "user", "content": (secret + " ") * 5000}]
    status, resp = await gw.call("POST", "/v1/messages", json=big)
    assert status == 413
    assert secret not in resp.decode()
    assert await gw.leaks(secret) == []


@pytest.mark.parametrize("upstream_status", [400, 404, 500, 529])
async def test_upstream_error_bodies(gw: Proof, upstream_status: int) -> None:
    secret = canary(f"up{upstream_status}")
    gw.stub.behaviour.fail_status = upstream_status
    gw.stub.behaviour.fail_message = f"upstream says {secret}"
    status, resp = await gw.call("POST", "/v1/messages", json=message_body(secret))
    assert status == upstream_status
    assert secret in resp.decode()  # the provider's own answer reaches its client...
    assert await gw.leaks(secret) == []  # ...and nothing else


async def test_upstream_reset_mid_stream(gw: Proof) -> None:
    secret = canary("reset")
    gw.stub.behaviour.reply = f"partial {secret} " * 5
    gw.stub.behaviour.reset_after = 2
    status, body = await gw.call("POST", "/v1/messages", json=message_body(secret, stream=True))
    assert status == 200
    assert b"event: error" in body
    assert await gw.leaks(secret) == []


async def test_upstream_first_byte_timeout(gw: Proof) -> None:
    secret = canary("timeout")
    gw.stub.behaviour.header_delay = 3  # > timeouts.first_byte (1.5 s)
    status, resp = await gw.call("POST", "/v1/messages", json=message_body(secret))
    assert status == 504
    assert secret not in resp.decode()
    assert await gw.leaks(secret) == []


async def test_upstream_idle_timeout_mid_stream(gw: Proof) -> None:
    secret = canary("idle")
    gw.stub.behaviour.reply = f"slow {secret} " * 5
    gw.stub.behaviour.pause_after = 2  # then silence > timeouts.idle (1.5 s)
    status, body = await gw.call("POST", "/v1/messages", json=message_body(secret, stream=True))
    assert status == 200
    assert secret in body.decode()
    assert await gw.leaks(secret) == []


async def test_client_disconnect_mid_stream(gw: Proof) -> None:
    secret = canary("disconnect")
    gw.stub.behaviour.reply = f"never finished {secret} " * 5
    gw.stub.behaviour.pause_after = 4  # the canary (word 3) is out, then the upstream waits
    before = gw.stub.disconnects
    gw.requests += 1
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            gw.url + "/v1/messages",
            json=message_body(secret, stream=True),
            headers={"anthropic-version": "2023-06-01", "x-api-key": gw.key},
            ssl=gw.ssl,
        )
        seen = b""
        async with asyncio.timeout(5):
            while secret.encode() not in seen:
                chunk = await resp.content.readany()
                assert chunk, "stream ended before the canary arrived"
                seen += chunk
        resp.close()  # the client goes away mid-stream
    await eventually(lambda: gw.stub.disconnects != before, what="the upstream disconnect")
    assert await gw.leaks(secret) == []


async def test_malformed_http_and_garbage_on_the_tls_port(gw: Proof) -> None:
    """Bad input below HTTP: aiohttp's parser errors quote the offending bytes."""
    secret = canary("http")
    port = int(gw.url.rsplit(":", 1)[1])
    refused = gw.log_path.read_text(errors="replace").count(REFUSED)
    # Plaintext on the TLS port: the handshake fails.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /{secret} HTTP/1.1\r\nHost: {secret}\r\n\r\n".encode())
    await writer.drain()
    async with asyncio.timeout(5):
        await reader.read()
    writer.close()
    await writer.wait_closed()
    # Over TLS: a broken request line and a broken header.
    for raw in (
        f"GET /{secret} HTTP/9.9 {secret}\r\n\r\n",
        f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nBad Header {secret}\r\n\r\n",
        f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: {secret}\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection(
            "localhost", port, ssl=gw.ssl, server_hostname="localhost"
        )
        writer.write(raw.encode())
        await writer.drain()
        async with asyncio.timeout(5):
            await reader.read()
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    # These never reach the request path (no audit event to await): each is logged as
    # refused before its connection closes, so the three lines mean the gateway is done.
    await eventually(lambda: gw.log_path.read_text(errors="replace").count(REFUSED) >= refused + 3)
    assert await gw.leaks(secret) == []


# --- The process as a whole (these run last: they judge everything above) --------------


async def test_detector_finds_what_the_gateway_does_record(gw: Proof) -> None:
    """The leak check is not vacuous: metadata the gateway does record is found."""
    gw.requests += 1
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.url + "/v1/messages",
            json=message_body("x"),
            headers={"anthropic-version": "2023-06-01", "x-api-key": gw.key},
            ssl=gw.ssl,
        ) as resp,
    ):
        request_id = resp.headers["x-gateway-request-id"]
        await resp.read()
    assert set(await gw.leaks(request_id)) == {"stdout/stderr", "audit"}
    assert "/metrics" in await gw.leaks(MODEL)
    assert "/zdr/posture" in await gw.leaks("core_dumps_disabled")
    assert "audit" in await gw.leaks(HARNESS_KEY_ID)  # who called: the key id, not the key
    assert "/metrics" in await gw.leaks('reason="bad_signature"')


async def test_audit_segments_hold_no_field_value_in_clear(gw: Proof) -> None:
    """A key id chosen as a canary: in the decrypted trail, in no audit file's bytes."""
    kid = f"kidcanary-{os.urandom(6).hex()}"  # not "CANARY-": this one is meant to be kept
    key = gw.issue(kid, limits=GENEROUS)
    status, _ = await gw.call(
        "POST", "/v1/messages", json=message_body("x"), headers={"x-api-key": key}
    )
    assert status == 200
    found = await gw.leaks(kid)
    assert "audit" in found  # recorded (decrypted)...
    assert not [f for f in found if f.startswith("audit file")], found  # ...as ciphertext only
    for value in (MODEL, TEAM, '"status"', "request_id"):
        assert not [f for f in await gw.leaks(value) if f.startswith("audit file")], value


async def test_no_credential_and_no_canary_anywhere(gw: Proof) -> None:
    """Across everything above: the harness key (or a segment of it) and any canary, even
    a truncated one (the prefix is enough), are in no log, audit event, metric or file."""
    payload, signature = gw.key.split(".")[1:]
    # (test_policy_refusal_beta_header_and_endpoint lower-cases its canary)
    for secret in (gw.key, payload, signature, "CANARY-", "canary-beta-"):
        assert await gw.leaks(secret) == [], secret


async def test_no_file_written_while_proxying(gw: Proof) -> None:
    await gw.settle()
    during = [line for line in gw.writes(gw.ready_mark) if '"/dev/null"' not in line]
    assert during == [], "\n".join(during)
    # Over its whole life the process wrote into one directory: the audit segments.
    written = {
        line.split('"')[1] for line in gw.writes() if '"' in line and '"/dev/null"' not in line
    }
    assert written == {str(gw.audit_dir), str(gw.audit_dir / "main.00000000.seg")}
    assert list((gw.root / "tmp").iterdir()) == []
    assert list((gw.root / "home").iterdir()) == []


async def test_running_gateway_is_hardened(gw: Proof) -> None:
    assert gw.pid
    limits = Path(f"/proc/{gw.pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]
    status = Path(f"/proc/{gw.pid}/status").read_text()
    vm_lck = int(next(x for x in status.splitlines() if x.startswith("VmLck")).split()[1])
    locked = harden.can_lock_memory()
    assert (vm_lck > 0) is locked  # harden.lock_memory: content cannot be swapped out
    async with aiohttp.ClientSession() as http, http.get(gw.admin_url + "/zdr/posture") as resp:
        posture = await resp.json()
    hardening = posture["hardening"]
    assert hardening["core_dumps_disabled"] is True
    assert hardening["dumpable"] is False
    assert hardening["memory_locked"] is locked
    assert hardening["temporary_files_disabled"] is True
    assert hardening["bytecode_writes_disabled"] is True
    assert posture["audit"]["dir"] == str(gw.audit_dir)
    assert posture["audit"]["encryption"] == "AES-256-GCM"
    assert posture["audit"]["key_ids"] == [support_audit.KID]
    assert posture["audit"]["chain_keyed"] is True


async def test_audit_trail_complete_and_verifiable(gw: Proof, tmp_path: Path) -> None:
    await gw.settle()
    events = support_audit.events(gw.audit_dir)
    assert len(events) == gw.requests
    statuses = {e["status"] for e in events}
    assert {200, 400, 401, 403, 404, 405, 413, 415, 429, 499, 504} <= statuses
    # Who called: every admitted or refused-after-auth request names its key and team; a
    # failed authentication names nobody (its claims are unverified).
    named = [(e["key_id"], e["team"]) for e in events if e["status"] in (200, 403, 429)]
    assert named
    assert all(key_id and team for key_id, team in named), named
    anonymous = {(e["key_id"], e["team"]) for e in events if e["status"] == 401}
    assert anonymous == {(None, None)}
    assert {e["key_id"] for e in events} >= {HARNESS_KEY_ID, "proof-rpm1", "proof-scoped"}
    decisions = {d for e in events for d in e["decisions"]}
    assert "refuse:anthropic.mcp_servers" in decisions

    def verify(path: Path) -> subprocess.CompletedProcess[str]:
        key = f"{support_audit.KID}=AUDIT_ENC_KEY"
        return subprocess.run(
            [sys.executable, "-m", "gateway", "audit", "verify", str(path), "--key-env", key,
             "--chain-key-env", "AUDIT_KEY"],
            capture_output=True,
            text=True,
            env={**os.environ, "AUDIT_KEY": AUDIT_KEY, "AUDIT_ENC_KEY": support_audit.KEY},
            check=False,
        )  # fmt: skip

    ok = verify(gw.audit_dir)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"OK: {len(events)} event(s) in 1 segment(s) of 1 stream(s)" in ok.stdout

    lines = (gw.audit_dir / "main.00000000.seg").read_bytes().split(b"\n")[:-1]
    n, body = lines[3].split(b" ")
    edited = [
        *lines[:3],
        n + b" " + body[:-6] + (b"AAAA==" if body[-6:] != b"AAAA==" else b"BBBB=="),
        *lines[4:],
    ]
    deleted = lines[:5] + lines[6:]
    reordered = [*lines[:2], lines[3], lines[2], *lines[4:]]
    for name, tampered, line_no, word, tail in (
        ("edited", edited, 4, "does not authenticate", b"\n"),
        ("deleted", deleted, 6, "missing", b"\n"),
        ("reordered", reordered, 3, "moved", b"\n"),
        ("truncated", lines, len(lines), "truncated tail", b"\n9999 abc"),
    ):
        d = tmp_path / name
        d.mkdir()
        (d / "main.00000000.seg").write_bytes(b"\n".join(tampered) + tail)
        r = verify(d)
        assert r.returncode == 1, (name, r.stdout)
        line_no += 1 if name == "truncated" else 0
        assert f"main.00000000.seg: line {line_no}: " in r.stdout, (name, r.stdout)
        assert word in r.stdout, (name, r.stdout)
