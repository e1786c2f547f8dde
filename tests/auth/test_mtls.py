"""Client-certificate identities: verified subject CN / SAN → principal."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.auth.mtls import MTLSMap
from gateway.auth.settings import MTLSIdentity

IDS = MTLSMap(
    [
        MTLSIdentity(id="batch-svc", team="data", subject_cn="batch.internal", rpm=10),
        MTLSIdentity(id="web", team="web", san_dns="web.svc.cluster.local", models=["claude-*"]),
        MTLSIdentity(id="spiffe", team="ml", san_uri="spiffe://corp/ns/ml/sa/runner"),
    ]
)


def cert(cn: str, *sans: tuple[str, str]) -> dict[str, Any]:
    return {
        "subject": ((("organizationName", "Corp"),), (("commonName", cn),)),
        "subjectAltName": sans,
    }


@pytest.mark.parametrize(
    ("peercert", "key_id"),
    [
        (cert("batch.internal"), "mtls:batch-svc"),
        (cert("x", ("DNS", "web.svc.cluster.local")), "mtls:web"),
        (cert("x", ("URI", "spiffe://corp/ns/ml/sa/runner")), "mtls:spiffe"),
        (cert("web.svc.cluster.local"), None),  # a CN is not a SAN
        (cert("x", ("DNS", "batch.internal")), None),  # a SAN is not a CN
        (cert("x", ("DNS", "evil.web.svc.cluster.local")), None),
        ({}, None),
        (None, None),
    ],
)
def test_identify(peercert: dict[str, Any] | None, key_id: str | None) -> None:
    p = IDS.identify(peercert)
    assert (p.key_id if p else None) == key_id


def test_grant_becomes_scopes() -> None:
    p = IDS.identify(cert("batch.internal"))
    assert p is not None
    assert (p.team, p.source, p.limits.rpm) == ("data", "mtls", 10)
    w = IDS.identify(cert("x", ("DNS", "web.svc.cluster.local")))
    assert w is not None
    assert w.models == ("claude-*",)


def test_exactly_one_matcher() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        MTLSIdentity(id="a", team="t")
    with pytest.raises(ValidationError, match="exactly one"):
        MTLSIdentity(id="a", team="t", subject_cn="x", san_dns="y")
