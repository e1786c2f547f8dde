"""`/zdr/posture` payload: complete, stable, and free of secrets."""

from __future__ import annotations

import json

import aiohttp

from gateway.config import parse
from gateway.observe import posture
from gateway.observe.metrics import Metrics
from gateway.policy import catalogue
from gateway.policy.rules import BY_ID
from tests.conftest import Gateway

SECRET = "sk-ant-CANARY-posture-secret-0b7e"
YAML = f"""
server: {{tls: {{enabled: false}}}}
upstreams:
  - {{name: anthropic, provider: anthropic, url: "https://api.anthropic.com", api_key: "{SECRET}"}}
policy:
  teams: {{sandbox: {{allow: [anthropic.code_execution]}}}}
audit:
  chain_key: "{SECRET}-chain"
  client_ip: hashed
  client_ip_key: "{SECRET}-ip"
"""


def test_posture_payload() -> None:
    config = parse(YAML)
    p = posture.build(config, Metrics())
    blob = json.dumps(p)
    assert SECRET not in blob
    assert p["config_hash"] == config.digest()
    assert "request_id" in p["logged_fields"]["log_lines"]
    assert p["logged_fields"]["audit_events"][-4:] == ["chain", "seq", "prev", "hash"]
    assert p["logged_fields"]["metric_labels"]["zdr_gateway_policy_refusals"] == ["rule"]
    cat = p["policy"]["catalogue"]
    assert cat["version"] == catalogue.VERSION
    assert {b["family"]: b["class"] for b in cat["betas"]}["claude-code"] == "eligible"
    assert {t["type"]: t["class"] for t in cat["tools"]}["code_execution"] == "refused"
    assert p["policy"]["qualified"]["anthropic.web_dynamic_filtering"] == "refuse"
    assert p["policy"]["anthropic_betas"]["unlisted"] == "allow"
    assert p["policy"]["anthropic_tools"]["unlisted"] == "allow"
    rules = {r["id"]: r for r in p["policy"]["rules"]}
    assert set(rules) == set(BY_ID)
    assert rules["anthropic.code_execution"]["exempt_teams"] == ["sandbox"]
    assert rules["anthropic.batches"]["applies"] is True
    assert rules["openai.store"]["applies"] is False  # no OpenAI upstream configured
    assert p["audit"]["chain_keyed"] is True
    assert p["audit"]["client_ip"] == "hashed"
    assert p["hardening"]["dumpable"] is True  # this test process is not hardened


def test_hash_differs_with_policy() -> None:
    a = parse(YAML)
    b = parse(YAML.replace("anthropic.code_execution", "anthropic.mcp_servers"))
    assert posture.build(a, Metrics())["config_hash"] != posture.build(b, Metrics())["config_hash"]


async def test_posture_endpoint_on_the_admin_port(gateway: Gateway) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(gateway.admin_url + "/zdr/posture") as resp,
    ):
        assert resp.status == 200
        assert resp.headers["cache-control"] == "no-store"
        body = await resp.json()
    assert body["config_hash"] == gateway.config.digest()
    assert {r["id"] for r in body["policy"]["rules"]} == set(BY_ID)
    # ...and only there: the client listener does not serve it.
    async with (
        aiohttp.ClientSession() as http,
        http.get(gateway.url + "/zdr/posture", ssl=gateway.client_ssl()) as resp,
    ):
        assert resp.status == 404
