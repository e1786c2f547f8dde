"""The request head: exactly what is given, and nothing that could smuggle a request."""

from __future__ import annotations

import pytest

from gateway.http1.request import UnsafeRequest, encode_head


def test_head_carries_only_what_it_is_given() -> None:
    head = encode_head(
        "POST",
        "/v1/messages?beta=true",
        "api.example:8443",
        [("x-api-key", "k"), ("anthropic-version", "2023-06-01")],
        2,
    )
    assert head == (
        b"POST /v1/messages?beta=true HTTP/1.1\r\n"
        b"Host: api.example:8443\r\n"
        b"x-api-key: k\r\n"
        b"anthropic-version: 2023-06-01\r\n"
        b"Content-Length: 2\r\n"
        b"\r\n"
    )


def test_get_has_no_content_length_and_an_empty_post_says_zero() -> None:
    assert b"Content-Length" not in encode_head("GET", "/v1/models", "h", [], None)
    assert b"Content-Length: 0\r\n" in encode_head("POST", "/v1/x", "h", [], None)


def test_header_bytes_the_server_decoded_go_back_unchanged() -> None:
    value = b"caf\xe9".decode("utf-8", "surrogateescape")  # not valid UTF-8 on the wire
    assert b"x-a: caf\xe9\r\n" in encode_head("GET", "/", "h", [("x-a", value)], None)


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GET", "/", [("x-a", "v\r\nx-injected: 1")]),
        ("GET", "/", [("x-a", "v\nx-injected: 1")]),
        ("GET", "/", [("x-a", "v\rx")]),
        ("GET", "/", [("x-a", "v\x00x")]),
        ("GET", "/", [("x-a\r\nx-injected", "1")]),
        ("GET", "/", [("x a", "1")]),
        ("GET", "/", [("x-a:", "1")]),
        ("GET", "/", [("", "1")]),
        # Framing is the client's: a caller's copy would be a second, conflicting one.
        ("POST", "/", [("Content-Length", "0")]),
        ("POST", "/", [("transfer-encoding", "chunked")]),
        ("GET", "/", [("Host", "elsewhere")]),
        ("GET", "/", [("connection", "upgrade")]),
        ("GET", "/a b", []),
        ("GET", "/a\r\nGET /b", []),
        ("GET", "/caf\u00e9", []),
        ("GET", "http://elsewhere/", []),
        ("GET", "", []),
        ("CONNECT", "/", []),
        ("GET /x HTTP/1.1\r\n", "/", []),
    ],
)
def test_unsafe_requests_are_refused(
    method: str, target: str, headers: list[tuple[str, str]]
) -> None:
    with pytest.raises(UnsafeRequest) as info:
        encode_head(method, target, "h", headers, None)
    # SECURITY: the message is a constant; nothing of the request is echoed.
    assert "inject" not in str(info.value)
    assert info.value.kind == "unsafe_request"
