"""Residency and per-team credentials through a pool: label restrictions from team config
and from a key's claim (`keys issue --upstream-labels`), never widened; each team's
workspace key reaches the stand-in (recorded as a hash); target keys and URLs stay out of
errors, metrics, /readyz, /zdr/posture and the audit trail."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.auth import tokens
from gateway.auth.keyset import load_private_key, write_key_pair
from gateway.cli import main
from tests.conftest import Gateway, StartGateway
from tests.stages.conftest import pool_config
from tests.support import audit as support_audit

BODY = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 8,
    "messages": [{"role": "user", "content": "hi"}],
}


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class Keys:
    def __init__(self, tmp_path: Path) -> None:
        self.private, self.public = write_key_pair(tmp_path / "keys", "k1")

    def auth(self) -> dict[str, Any]:
        return {"signing_keys": [{"kid": "k1", "public_key_file": str(self.public)}]}

    def issue(self, team: str, key_id: str) -> str:
        now = int(time.time())
        claims = tokens.KeyClaims(key_id, team, now - 60, now - 60, now + 3600)
        return tokens.issue(claims, load_private_key(self.private), "k1")

    def issue_cli(self, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
        args = ["keys", "issue", "--signing-key", str(self.private), "--id", "eu-app"]
        capsys.readouterr()  # the audit lines so far (sink: stdout)
        assert main([*args, "--team", "research", "--rpm", "600", *extra]) == 0
        return capsys.readouterr().out.strip()


async def post(gw: Gateway, key: str) -> tuple[int, dict[str, Any]]:
    headers = {"anthropic-version": "2023-06-01", "x-api-key": key}
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.url + "/v1/messages", json=BODY, headers=headers, ssl=gw.client_ssl()) as r,
    ):
        doc: dict[str, Any] = await r.json()
        return r.status, doc


async def test_eu_key_never_reaches_a_us_target(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    stand_in: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = Keys(tmp_path)
    eu_key = keys.issue_cli(capsys, "--upstream-labels", "region=eu")
    eu, us = await stand_in(), await stand_in()
    targets = [
        {"name": "eu-1", "url": eu.url, "labels": {"region": "eu"}},
        {"name": "eu-2", "url": "https://127.0.0.1:9", "labels": {"region": "eu"}},  # down
        {"name": "us-1", "url": us.url, "labels": {"region": "us"}, "priority": 1},
    ]
    cfg = pool_config(config_dict, targets, breaker={"consecutive_failures": 1})
    cfg["auth"] = keys.auth()
    gw = await start_gateway(cfg)
    for _ in range(6):
        assert (await post(gw, eu_key))[0] == 200
    assert len(eu.stub.requests) == 6
    assert us.stub.requests == []

    eu.stub.behaviour.fail_status = 529  # now every EU target fails
    statuses = [(await post(gw, eu_key))[0] for _ in range(4)]
    assert us.stub.requests == []  # not even once, with every EU target down
    assert statuses[-1] == 503
    status, doc = await post(gw, eu_key)
    assert status == 503
    assert doc["type"] == "error"
    assert doc["error"]["type"] == "api_error"
    assert "No upstream target allowed" in doc["error"]["message"]
    assert gw.sample("zdr_gateway_upstream_unavailable_total", upstream="anthropic") >= 1

    unrestricted = keys.issue("research", "any-app")  # a key without the claim: US serves
    assert (await post(gw, unrestricted))[0] == 200
    assert len(us.stub.requests) == 1


async def test_team_config_restriction_and_conflicting_claim(
    start_gateway: StartGateway,
    config_dict: dict[str, Any],
    stand_in: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = Keys(tmp_path)
    eu, us = await stand_in(), await stand_in()
    targets = [
        {"name": "eu-1", "url": eu.url, "labels": {"region": "eu"}},
        {"name": "us-1", "url": us.url, "labels": {"region": "us"}},
    ]
    cfg = pool_config(config_dict, targets, teams={"research": {"labels": {"region": "eu"}}})
    cfg["auth"] = keys.auth()
    gw = await start_gateway(cfg)
    for _ in range(6):  # the team's config alone holds its keys to the EU
        assert (await post(gw, keys.issue("research", "r1")))[0] == 200
    assert len(eu.stub.requests) == 6
    assert us.stub.requests == []
    assert (await post(gw, keys.issue("other", "o1")))[0] == 200  # other teams: anywhere
    us_key = keys.issue_cli(capsys, "--upstream-labels", "region=us")  # team says eu
    assert (await post(gw, us_key))[0] == 503  # both must hold: nothing satisfies them
    assert len(eu.stub.requests) + len(us.stub.requests) == 7


async def test_each_team_reaches_upstream_with_its_workspace_key(
    start_gateway: StartGateway, config_dict: dict[str, Any], stand_in: Any, tmp_path: Path
) -> None:
    keys = Keys(tmp_path)
    ws_a, ws_b = "sk-ant-workspace-a-CANARY", "sk-ant-workspace-b-CANARY"
    # One stand-in per workspace; each answers 401 to any other key.
    a, b = await stand_in(ws_a), await stand_in(ws_b)
    targets = [
        {"name": "ws-a", "url": a.url, "api_key": ws_a, "labels": {"workspace": "a"}},
        {"name": "ws-b", "url": b.url, "api_key": ws_b, "labels": {"workspace": "b"}},
    ]
    teams = {"alpha": {"labels": {"workspace": "a"}}, "beta": {"labels": {"workspace": "b"}}}
    cfg = pool_config(config_dict, targets, teams=teams)
    cfg["auth"] = keys.auth()
    audit_path = tmp_path / "audit"
    cfg["audit"] = support_audit.file_sink(audit_path)
    gw = await start_gateway(cfg)
    for i in range(5):
        assert (await post(gw, keys.issue("alpha", f"a{i}")))[0] == 200
        assert (await post(gw, keys.issue("beta", f"b{i}")))[0] == 200
        assert (await post(gw, keys.issue("beta", f"c{i}")))[0] == 200
    assert a.stub.key_hashes == [key_hash(ws_a)] * 5
    assert b.stub.key_hashes == [key_hash(ws_b)] * 10

    events = support_audit.events(audit_path)
    assert {(e["team"], e["target"], e["attempts"]) for e in events} == {
        ("alpha", "ws-a", 1),
        ("beta", "ws-b", 1),
    }
    # The workspace keys and target URLs appear nowhere the operator looks.
    async with aiohttp.ClientSession() as http:
        seen = [support_audit.text(audit_path)]
        for path in ("/metrics", "/readyz?verbose", "/zdr/posture"):
            async with http.get(gw.admin_url + path) as r:
                seen.append(await r.text())
    for text in seen:
        assert "CANARY" not in text
        assert a.url.split("//")[1] not in text
        assert b.url.split("//")[1] not in text
    posture = json.loads(seen[3])["upstreams"][0]
    assert [t["name"] for t in posture["targets"]] == ["ws-a", "ws-b"]
    assert posture["targets"][0]["labels"] == {"workspace": "a"}
    assert json.loads(seen[2])["upstreams"] == {"anthropic": {"ws-a": "closed", "ws-b": "closed"}}


def test_cli_refuses_bad_upstream_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = Keys(tmp_path)
    for bad in ("region", "region=eu,region=us", "re gion=eu", "="):
        args = ["keys", "issue", "--signing-key", str(keys.private), "--id", "x", "--team", "t"]
        assert main([*args, "--rpm", "1", "--upstream-labels", bad]) == 1
        out = capsys.readouterr()
        assert out.out == ""
        assert "--upstream-labels" in out.err


def test_claim_round_trips_and_bad_claims_are_refused(tmp_path: Path) -> None:
    keys = Keys(tmp_path)
    now = int(time.time())
    claims = tokens.KeyClaims(
        "k", "t", now, now, now + 60, upstream_labels=(("region", "eu"), ("zdr", "true"))
    )
    token = tokens.issue(claims, load_private_key(keys.private), "k1")
    from gateway.auth.keyset import KeySet, load_public_key

    keyset = KeySet({"k1": load_public_key(keys.public)})
    principal = tokens.verify(token, keyset, now, ())
    assert principal.upstream_labels == (("region", "eu"), ("zdr", "true"))
    for bad in ({}, {"region": 1}, {"re gion": "eu"}, ["region", "eu"]):
        with pytest.raises(tokens.Rejected):
            tokens.validate_payload(
                {"jti": "k", "team": "t", "iat": now, "nbf": now, "upstream_labels": bad}
            )
