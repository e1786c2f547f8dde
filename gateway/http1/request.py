"""The request head: `METHOD target HTTP/1.1`, Host, the given headers, Content-Length.

Nothing else is added (no User-Agent, Accept-Encoding, Connection or cookies): the
upstream sees the caller's allow-listed headers and its credential, and no more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway.http1.errors import ClientError

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# Methods whose request carries a body by definition: an empty one still says so.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# RFC 9110 §5.6.2 token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
# origin-form, visible ASCII only: no space, no control character, nothing to re-encode.
_TARGET = re.compile(r"/[\x21-\x7e]*")
# Framing and routing are this module's to write; a caller's copy would be a second one.
_RESERVED = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade"})


class UnsafeRequest(ClientError, ValueError):
    """A method, target, header name or value that would not be one clean HTTP request."""

    kind = "unsafe_request"


def encode_head(
    method: str,
    target: str,
    host: str,
    headers: Iterable[tuple[str, str]],
    body_length: int | None,
) -> bytes:
    """The request head as bytes. Raises `UnsafeRequest` (message constant).

    SECURITY: a CR, LF or NUL in a header name or value, or a space or control
    character in the target, would let the text after it start a header or a
    whole request of its own (request smuggling). The server side refuses such
    requests already; this refuses them again where the bytes are written.
    """
    if method not in METHODS:
        raise UnsafeRequest("method not allowed upstream")
    if not _TARGET.fullmatch(target):
        raise UnsafeRequest("request target not allowed upstream")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value) or name.lower() in _RESERVED:
            raise UnsafeRequest("request header not allowed upstream")
        lines.append(f"{name}: {value}")
    if body_length is not None or method in _BODY_METHODS:
        lines.append(f"Content-Length: {body_length or 0}")
    lines.append("\r\n")
    # surrogateescape: header text the server decoded that way goes back as the same bytes.
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")
