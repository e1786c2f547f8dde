"""Fuzz: generated bodies, headers and request lines against every route.

Every answer is provider-shaped, none is a 5xx caused by the input, and the gateway
keeps serving. `make test` runs a small number of examples (a few seconds);
ZDR_FUZZ_EXAMPLES=5000 runs more by hand.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import FuzzTarget

EXAMPLES = int(os.environ.get("ZDR_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written next to the tests
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ROUTES = [
    ("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens"), ("GET", "/v1/models"),
    ("GET", "/v1/models/claude-sonnet-4-5"), ("POST", "/v1/files"), ("GET", "/v1/batches"),
    ("POST", "/openai/v1/chat/completions"), ("POST", "/openai/v1/responses"),
    ("POST", "/openai/v1/embeddings"), ("POST", "/openai/v1/completions"),
    ("GET", "/openai/v1/models"), ("POST", "/openai/v1/files"), ("GET", "/nowhere"),
    ("DELETE", "/v1/messages"), ("POST", "/openai/nowhere"),
]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
# Bodies shaped like real requests, with every field free to be wrong.
shaped = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.sampled_from(["claude-sonnet-4-5", "gpt-5"]), json_values),
        "max_tokens": st.one_of(st.integers(-5, 10**20), json_values),
        "max_completion_tokens": st.one_of(st.integers(-5, 100), json_values),
        "max_output_tokens": st.one_of(st.integers(-5, 100), json_values),
        "messages": st.one_of(
            st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]),
                                            "content": json_values}), max_size=3),
            json_values,
        ),
        "input": json_values,
        "stream": json_values,
        "metadata": json_values,
        "tools": json_values,
    },
)  # fmt: skip


def nested(levels: int, opener: str, closer: str) -> bytes:
    return (
        '{"model":"m","max_tokens":1,"messages":' + opener * levels + closer * levels + "}"
    ).encode()


bodies = st.one_of(
    shaped.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=600),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(nested, st.integers(100, 4000), st.just("["), st.just("]")),
    st.builds(nested, st.integers(100, 4000), st.just('[{"a":'), st.just("}]")),
    st.just(b'{"model":"\\ud800","max_tokens":1,"messages":[]}'),  # lone surrogate escape
    st.just(b'{"max_tokens":1e999,"messages":[]}'),
    st.just(b'{"model":"m","model":1}'),
)
content_types = st.one_of(
    st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                     "application/JSON", "multipart/form-data", ""]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)  # fmt: skip
token = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-_0123456789"), min_size=1, max_size=20)
header_value = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60)
headers = st.lists(
    st.tuples(
        st.one_of(
            token,
            st.sampled_from(["authorization", "x-api-key", "anthropic-version", "anthropic-beta",
                             "accept", "connection", "transfer-encoding", "expect", "host",
                             "content-encoding", "openai-beta", "te", "upgrade"]),
        ),
        header_value,
    ),
    max_size=6,
)  # fmt: skip


def is_error_shape(doc: Any, openai: bool) -> bool:
    if openai:
        err = doc.get("error") if isinstance(doc, dict) else None
        return isinstance(err, dict) and isinstance(err.get("message"), str) and "type" in err
    return (
        isinstance(doc, dict)
        and doc.get("type") == "error"
        and isinstance(doc.get("error"), dict)
        and isinstance(doc["error"].get("type"), str)
        and isinstance(doc["error"].get("message"), str)
    )


def exchange(port: int, raw: bytes) -> http.client.HTTPResponse | None:
    """Send raw bytes; the parsed answer, or None if the gateway closed without one."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(raw)
        resp = http.client.HTTPResponse(sock)
        try:
            resp.begin()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return None
        resp.body = resp.read()  # type: ignore[attr-defined]
        return resp
    finally:
        sock.close()


def check(resp: http.client.HTTPResponse | None, openai: bool | None) -> None:
    if resp is None:
        return
    body: bytes = resp.body  # type: ignore[attr-defined]
    assert resp.status < 500 or resp.status == 529, (resp.status, body[:300])
    relayed = resp.getheader("x-gateway-request-id") not in (None, resp.getheader("request-id"))
    if resp.status >= 400 and not relayed:  # a stand-in's own 404 page is not ours to shape
        doc = json.loads(body)
        shapes = [openai] if openai is not None else [False, True]
        assert any(is_error_shape(doc, o) for o in shapes), body[:300]


def still_serving(port: int) -> None:
    body = b'{"model":"claude-sonnet-4-5","max_tokens":4,"messages":[]}'
    resp = exchange(
        port,
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body),
    )
    assert resp is not None
    assert resp.status == 200


# Larger runs by hand need more than pytest-timeout's 120 s (about 20 examples a second).
LONG_ENOUGH = pytest.mark.timeout(max(120, EXAMPLES // 5))


@LONG_ENOUGH
@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    body=bodies,
    content_type=content_types,
    extra=headers,
    chunked=st.booleans(),
)
def test_requests_to_every_route(
    fuzz_target: FuzzTarget,
    route: tuple[str, str],
    body: bytes,
    content_type: str,
    extra: list[tuple[str, str]],
    chunked: bool,
) -> None:
    method, path = route
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "connection: close"]
    if content_type:
        lines.append(f"content-type: {content_type}")
    lines += [f"{k}: {v}" for k, v in extra]
    framing = b"transfer-encoding: chunked" if chunked else b"content-length: %d" % len(body)
    payload = (
        (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        if chunked and body
        else (b"0\r\n\r\n" if chunked else body)
    )
    head = "\r\n".join(lines).encode("latin-1") + b"\r\n" + framing + b"\r\n\r\n"
    check(exchange(fuzz_target.port, head + payload), path.startswith("/openai/"))


request_lines = st.one_of(
    st.binary(min_size=1, max_size=120),
    st.builds(
        lambda m, t, v: m + b" " + t + b" " + v,
        st.one_of(st.sampled_from([b"GET", b"POST", b"PUT", b"CONNECT", b"OPTIONS", b"PRI"]),
                  st.binary(min_size=1, max_size=10)),
        st.one_of(st.sampled_from([b"/v1/messages", b"*", b"http://evil/v1/messages",
                                   b"/v1/messages?%00=1", b"//v1//messages", b"/%2e%2e/admin"]),
                  st.binary(max_size=60)),
        # Not HTTP/2.0: aiohttp echoes it in the status line, which http.client refuses.
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/0.9", b"http/1.1", b""]),
    ),
)  # fmt: skip


@LONG_ENOUGH
@FUZZ
@given(line=request_lines, extra=st.binary(max_size=200))
def test_request_lines_and_raw_heads(fuzz_target: FuzzTarget, line: bytes, extra: bytes) -> None:
    raw = line + b"\r\nHost: x\r\n" + extra + b"\r\n\r\n"
    check(exchange(fuzz_target.port, raw), None)


def test_the_gateway_still_serves_after_the_fuzz(fuzz_target: FuzzTarget) -> None:
    still_serving(fuzz_target.port)
