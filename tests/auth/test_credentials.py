"""Where a credential may come from, and the ambiguous or leaky ways that are refused."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, MultiDict

from gateway.auth.credentials import extract
from gateway.auth.tokens import MAX_TOKEN_BYTES, Rejected

KEY = "zdr_abc.def.ghi"


def _h(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


@pytest.mark.parametrize(
    "headers",
    [
        _h(("x-api-key", KEY)),
        _h(("Authorization", f"Bearer {KEY}")),
        _h(("authorization", f"bearer  {KEY} ")),
        _h(("x-api-key", KEY), ("Authorization", f"Bearer {KEY}")),  # same key twice: fine
    ],
    ids=["x-api-key", "bearer", "bearer lower-case", "both agree"],
)
def test_accepted_sources(headers: CIMultiDict[str]) -> None:
    assert extract(headers, MultiDict()) == KEY


def test_no_credential_is_none() -> None:
    assert extract(_h(("anthropic-version", "2023-06-01")), MultiDict()) is None


REFUSED = [
    (
        "two credentials disagree",
        _h(("x-api-key", KEY), ("Authorization", "Bearer other")),
        {},
        "ambiguous_credential",
    ),
    ("x-api-key twice", _h(("x-api-key", KEY), ("x-api-key", "other")), {}, "ambiguous_credential"),
    ("basic auth", _h(("Authorization", "Basic dXNlcjpwYXNz")), {}, "malformed"),
    ("empty bearer", _h(("Authorization", "Bearer ")), {}, "malformed"),
    ("empty x-api-key", _h(("x-api-key", "  ")), {}, "malformed"),
    ("oversized", _h(("x-api-key", "zdr_" + "A" * MAX_TOKEN_BYTES)), {}, "too_large"),
    ("?key=", _h(), {"key": KEY}, "query_credential"),
    ("?api_key=", _h(), {"api_key": KEY}, "query_credential"),
    ("?access_token=", _h(), {"access_token": "x"}, "query_credential"),
    ("?API_KEY= (case)", _h(), {"API_KEY": "x"}, "query_credential"),
    ("key under another name", _h(), {"q": KEY}, "query_credential"),
    ("JWT under another name", _h(), {"cursor": "eyJhbGciOi"}, "query_credential"),
    ("query even with a header", _h(("x-api-key", KEY)), {"token": KEY}, "query_credential"),
]


@pytest.mark.parametrize(
    ("headers", "query", "reason"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_refused(headers: CIMultiDict[str], query: dict[str, str], reason: str) -> None:
    with pytest.raises(Rejected) as exc:
        extract(headers, MultiDict(query))
    assert exc.value.reason == reason


def test_harmless_query_parameters_pass() -> None:
    assert extract(_h(("x-api-key", KEY)), MultiDict({"beta": "true", "limit": "20"})) == KEY
