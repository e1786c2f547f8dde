"""The `auth:` section: one bad-config case per validation rule, and the shipped example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from gateway.auth.settings import AuthSettings

ISSUER: dict[str, Any] = {
    "name": "corp",
    "issuer": "https://login.example.com/",
    "audience": "zdr-gateway",
    "jwks_url": "https://login.example.com/jwks",
    "grants": [{"claim": "groups", "value": "g", "team": "t"}],
}
KEY = {"kid": "a", "public_key_file": "/k.pem"}


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"signing_keys": [KEY, KEY]}, "each kid must be unique"),
        ({"signing_keys": [{"kid": "a b", "public_key_file": "/k"}]}, "pattern"),
        ({"oidc": [{**ISSUER, "algorithms": ["HS256"]}]}, "algorithms"),
        ({"oidc": [{**ISSUER, "algorithms": ["none"]}]}, "algorithms"),
        ({"oidc": [{**ISSUER, "algorithms": []}]}, "at least 1"),
        ({"oidc": [{**ISSUER, "grants": []}]}, "at least 1"),
        ({"oidc": [ISSUER, ISSUER]}, "must be unique"),
        ({"oidc": [{**ISSUER, "issuer": "zdr-gateway"}]}, "reserved"),
        ({"oidc": [{**ISSUER, "jwks_url": "file:///etc/jwks"}]}, "pattern"),
        ({"oidc": [{**ISSUER, "name": "Corp Name"}]}, "pattern"),
        ({"mtls": [{"id": "a", "team": "t"}]}, "exactly one"),
        ({"mtls": [{"id": "a", "team": "t", "san_dns": "x"}] * 2}, "each id must be unique"),
        ({"mtls": [{"id": "a", "team": "t", "san_dns": "x", "max_tokens": 0}]}, "greater than 0"),
        ({"leeway_seconds": 3600}, "less than or equal"),
        ({"max_tokens_over_ceiling": "ignore"}, "refuse"),
        ({"revoked": "a"}, "list"),
        ({"signing_key": []}, "Extra inputs"),
    ],
)
def test_bad_auth_config(auth: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AuthSettings.model_validate(auth)


def test_shipped_example_auth_section_and_its_commented_examples_validate() -> None:
    text = (Path(__file__).resolve().parents[2] / "config/gateway.example.yaml").read_text()
    section = text[text.index("\nauth:") : text.index("\nratelimit:")]
    plain = AuthSettings.model_validate(yaml.safe_load(section)["auth"])
    assert plain.signing_keys[0].kid == "2026-11"
    # Uncomment the documented oidc/mtls examples: they must be valid config too.
    lines = []
    for line in section.splitlines():
        m = re.match(r"^  #  (- .*|  .*)$", line)
        if m and not m.group(1).strip().startswith("#"):
            lines.append("    " + m.group(1))
        else:
            lines.append(line.replace("oidc: []", "oidc:").replace("mtls: []", "mtls:"))
    full = AuthSettings.model_validate(yaml.safe_load("\n".join(lines))["auth"])
    assert full.oidc[0].grants[0].team == "research"
    assert full.mtls[0].san_dns == "batch.svc.cluster.local"
    documented = set(re.findall(r"^\s+#?\s*-?\s*([a-z_]+):", section, re.M))
    for name in AuthSettings.model_fields:
        assert name in documented, f"auth.{name} is not documented in the example"
