"""Claude Code (the pinned npm package) in print mode through the gateway's default
policy, against the stand-in upstream: three ways to send the key, a tool-use round
trip, a refused feature, and its probe/telemetry never reaching the upstream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from gateway.audit.event import hash_value
from gateway.demo.stub_anthropic import STUB_API_KEY
from tests.clients.conftest import CCGateway, Claude, issue_key
from tests.conftest import StartGateway, Upstream
from tests.pii.echo_upstream import EchoUpstream, serving
from tests.support import audit as support_audit

REPLY = "Hello from the stand-in model."


def audit(tmp_path: Path) -> list[dict[str, Any]]:
    return support_audit.events(tmp_path / "audit")


@pytest.mark.parametrize("how", ["api_key", "bearer", "api_key_helper"])
async def test_print_mode_through_the_default_config(
    cc_gateway: CCGateway, claude: Claude, upstream: Upstream, tmp_path: Path, how: str
) -> None:
    key = cc_gateway.key
    env: dict[str, str] = {}
    if how == "api_key":
        env["ANTHROPIC_API_KEY"] = key
    elif how == "bearer":
        env["ANTHROPIC_AUTH_TOKEN"] = key
    else:
        # apiKeyHelper: a command whose stdout is the key; Claude Code sends it as both
        # x-api-key and Authorization: Bearer.
        key_file = tmp_path / "key.txt"
        key_file.write_text(key)
        settings = {"apiKeyHelper": f"cat {key_file}"}
        (tmp_path / "home" / ".claude" / "settings.json").write_text(json.dumps(settings))
    code, out, err = await claude(cc_gateway.gw, ["-p", "say hi"], env)
    assert code == 0, (out, err)
    assert REPLY in out
    # What reached the upstream: inference only, with the upstream's credential.
    paths = {(r.method, r.path) for r in upstream.stub.requests}
    assert paths == {("POST", "/v1/messages")}
    for seen in upstream.stub.requests:
        assert seen.query == "beta=true"
        headers = {k.lower(): v for k, v in seen.headers.items()}
        assert headers["x-api-key"] == STUB_API_KEY
        assert "authorization" not in headers
        assert key not in repr(seen)
        assert "claude-code-20250219" in headers["anthropic-beta"]
        assert headers["anthropic-dangerous-direct-browser-access"] == "true"
    events = audit(tmp_path)
    messages = [e for e in events if e["endpoint"] == "messages"]
    assert messages
    assert all(e["key_id"] == "claude-code-test" and e["status"] == 200 for e in messages)
    # Its connectivity probe (HEAD /api/hello) is answered by the gateway, not a 404.
    assert all(e["status"] != 404 for e in events), events
    assert any(e["endpoint"] == "probe" for e in events)
    # 2.1.328 sends a beta the catalogue does not list (per-turn-control-*): passed,
    # counted and marked, never named.
    assert "unlisted:beta" in messages[0]["decisions"]
    assert cc_gateway.gw.sample("zdr_gateway_policy_unlisted_total", kind="beta") >= 1
    assert "per-turn-control" not in support_audit.text(tmp_path / "audit")


async def test_tool_use_round_trip(
    cc_gateway: CCGateway, claude: Claude, upstream: Upstream
) -> None:
    note = claude.work / "note.txt"  # type: ignore[attr-defined]
    note.write_text("MARKER-tool-result-42\n")
    upstream.stub.behaviour.tool_use = {"name": "Read", "input": {"file_path": str(note)}}
    code, out, err = await claude(
        cc_gateway.gw, ["-p", "read note.txt"], {"ANTHROPIC_API_KEY": cc_gateway.key}
    )
    assert code == 0, (out, err)
    assert REPLY in out
    first, second = (r for r in upstream.stub.requests if r.path == "/v1/messages")
    assert b"tool_result" not in first.body
    last = json.loads(second.body)["messages"][-1]
    results = [b for b in last["content"] if b.get("type") == "tool_result"]
    assert results
    assert results[0]["tool_use_id"] == "toolu_stub01"
    assert "MARKER-tool-result-42" in json.dumps(results[0]["content"])


async def test_refused_feature_shows_the_rule_not_an_auth_failure(
    cc_gateway: CCGateway, claude: Claude, upstream: Upstream, tmp_path: Path
) -> None:
    env = {"ANTHROPIC_API_KEY": cc_gateway.key, "ANTHROPIC_BETAS": "files-api-2025-04-14"}
    code, out, err = await claude(cc_gateway.gw, ["-p", "say hi"], env)
    assert code != 0
    shown = out + err
    assert "rule anthropic.beta.files_api" in shown
    assert "Remove files-api from the anthropic-beta header" in shown  # what to do instead
    assert "Failed to authenticate" not in shown
    assert upstream.stub.requests == []
    refused = [e for e in audit(tmp_path) if e["endpoint"] == "messages"]
    assert refused
    assert all(e["status"] == 400 for e in refused)
    assert cc_gateway.gw.sample(
        "zdr_gateway_policy_refusals_total", rule="anthropic.beta.files_api"
    ) == len(refused)


async def test_session_id_is_audited_only_as_its_hmac(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    claude: Claude,
    upstream: Upstream,
    tmp_path: Path,
) -> None:
    key, public = issue_key(tmp_path)
    config_dict["auth"] = {"signing_keys": [{"kid": "cc", "public_key_file": public}]}
    session_key = "session-key-for-tests-0123456789"
    config_dict["audit"] = {
        "sink": "file",
        "dir": str(tmp_path / "audit"),
        "keys": [{"kid": support_audit.KID, "key": support_audit.KEY}],
        "session_id": "hashed",
        "session_id_key": session_key,
    }
    gw = await start_gateway(config_dict)
    code, out, err = await claude(gw, ["-p", "say hi"], {"ANTHROPIC_API_KEY": key})
    assert code == 0, (out, err)
    # The session id Claude Code also puts in the body's metadata (what reached the stub).
    body = json.loads(upstream.stub.requests[-1].body)
    session = json.loads(body["metadata"]["user_id"])["session_id"]
    messages = [e for e in audit(tmp_path) if e["endpoint"] == "messages"]
    assert messages
    assert {e["session_id_hash"] for e in messages} == {hash_value(session, session_key)}
    assert session not in support_audit.text(tmp_path / "audit")


async def test_gateway_model_discovery_is_served_and_scoped(
    cc_gateway: CCGateway, claude: Claude, upstream: Upstream, tmp_path: Path
) -> None:
    env = {"ANTHROPIC_API_KEY": cc_gateway.key, "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1"}
    code, out, err = await claude(cc_gateway.gw, ["-p", "say hi"], env)
    assert code == 0, (out, err)
    models = [r for r in upstream.stub.requests if r.path == "/v1/models"]
    assert [r.query for r in models] == ["limit=1000"]
    assert [e["status"] for e in audit(tmp_path) if e["endpoint"] == "models"] == [200]


async def test_pseudonymised_prompt_and_tool_input_come_back_as_the_originals(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    claude: Claude,
    cert_files: dict[str, str],
    tmp_path: Path,
) -> None:
    """PII on: the stand-in sees only placeholders; Claude Code gets the originals back
    in the streamed text and in a Read tool_use input (it reads the real file), and the
    tool result it sends next is pseudonymised too."""
    email = "zq.cc.canary.51d2@example.org"
    marker = "MARKER-pii-tool-result-77"
    (claude.work / email).write_text(marker + "\n")  # type: ignore[attr-defined]
    stub = EchoUpstream({len(email), len(marker), len("[EMAIL_1]")})
    stub.read_dir = str(claude.work)  # type: ignore[attr-defined]
    key, public = issue_key(tmp_path)
    async with serving(stub, cert_files) as url:
        config_dict["upstreams"][0]["url"] = url
        config_dict["auth"] = {"signing_keys": [{"kid": "cc", "public_key_file": public}]}
        config_dict["audit"] = support_audit.file_sink(tmp_path / "audit")
        config_dict["pii"] = {"default": {"email": "pseudonymise"}}
        gw = await start_gateway(config_dict)
        prompt = f"read the file {email} in this directory"
        code, out, err = await claude(gw, ["-p", prompt], {"ANTHROPIC_API_KEY": key})
    assert code == 0, (out, err)
    assert f"Reply for {email}" in out  # the final streamed text, restored
    assert stub.saw(marker)  # Claude Code read the file the restored tool input named
    assert stub.saw("[EMAIL_1]")
    assert not stub.saw(email)  # neither in the prompt nor in the tool result's path
    assert email not in support_audit.text(tmp_path / "audit")
    assert email.encode() not in generate_latest(gw.registry)
    assert gw.sample("zdr_gateway_pii_values_total", category="email", mode="pseudonymise") >= 2
