"""A request body parsed as JSON, with a bound on its nesting depth.

`json.loads` recurses once per level: about a thousand levels exhaust the
interpreter's stack and raise RecursionError, which used to surface as a 500. Every
deeper document, and every one past `max_depth`, is refused here as bad input.

Checking depth costs nothing for ordinary bodies: a document nested D deep has at
least D opening brackets, so one bytes.count pass (C speed) clears any body with no
more than `max_depth` of them, and only the rest are walked (iteratively).
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.errors import InvalidRequest

# What json.loads makes of a body, at most, per byte of text and per separator or
# container (CPython 3.11, 64-bit; tests/test_jsonbody.py measures it with tracemalloc
# over hostile shapes: `[{},{},...]` turns 3 bytes into a 64-byte dict).
_PER_SEPARATOR = 80  # a `,` or `:`: one more element (pointer, small object, dict slot)
_PER_CONTAINER = 128  # a `{` or `[`: an empty dict is 64 bytes, a list 56, plus growth
_UNCOUNTED = bytes(i for i in range(256) if i not in b",:{[\\")
_U_ESCAPE = re.compile(rb"\\u")


def parse(body: bytes | bytearray, max_depth: int, containers: int | None = None) -> Any:
    """The parsed document; InvalidRequest if it is not JSON or nests too deep.
    `containers`: the body's `{` and `[` count, if `held_cost` has it already."""
    try:
        doc = json.loads(body)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except ValueError:
        # SECURITY: the parser's message quotes the body; it is not passed on.
        raise InvalidRequest("Request body is not valid JSON.") from None
    if containers is None:
        containers = body.count(b"{") + body.count(b"[")
    if containers > max_depth and depth(doc, max_depth) > max_depth:
        raise _too_deep(max_depth)
    return doc


def held_cost(body: bytes | bytearray) -> tuple[int, int]:
    """Bytes of memory a body costs at its peak, while it is parsed: itself, the str
    json.loads decodes it to first, and an upper estimate of the parsed document; and
    the body's count of containers (`{` and `[`), for `parse`.

    Text is 1 byte a character when the body is ASCII without `\\u` escapes, else up
    to 4 (one astral character makes a whole str UCS-4)."""
    # PERF: one pass keeps the five characters counted (a C table lookup per byte), not
    # four bytes.count passes; and `\u` is looked for only if a backslash is there, with
    # a regex, where `in` is slow on the many `\n` of a prompt. 160 KB prompt: 352 ->
    # ~140 us, json.loads itself being 113 (bench/guards.py, "body checks").
    kept = body.translate(None, _UNCOUNTED)
    separators = kept.count(b",") + kept.count(b":")
    containers = kept.count(b"{") + kept.count(b"[")
    ascii_text = body.isascii() and (b"\\" not in kept or _U_ESCAPE.search(body) is None)
    per_char = 1 if ascii_text else 4
    text = len(body) * (1 + 2 * per_char)
    return text + separators * _PER_SEPARATOR + containers * _PER_CONTAINER, containers


def depth(doc: Any, stop: int) -> int:
    """Nesting depth of objects and arrays in `doc` (a scalar is 0), counted up to
    the first level past `stop`."""
    if not isinstance(doc, dict | list):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if level > deepest:
            deepest = level
            if deepest > stop:
                return deepest
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list) and child:
                stack.append((child, level + 1))
            elif isinstance(child, dict | list) and level + 1 > deepest:
                deepest = level + 1
                if deepest > stop:
                    return deepest
    return deepest


def _too_deep(limit: int) -> InvalidRequest:
    return InvalidRequest(
        f"Request body nests JSON deeper than the gateway's limit of {limit} levels.",
        reason="too_deep",
    )
