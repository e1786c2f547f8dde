"""jsonbody: depth bound (no RecursionError at any depth) and the parsed-cost estimate,
checked against what json.loads really allocates for hostile shapes."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from gateway.errors import InvalidRequest
from gateway.jsonbody import depth, held_cost, parse


def allocated(body: bytes) -> int:
    tracemalloc.start()
    try:
        doc = json.loads(body)
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del doc
    return size


def items(item: bytes, n: int = 20_000) -> bytes:
    return b"[" + b",".join([item] * n) + b"]"


SHAPES = {
    "empty objects": items(b"{}"),
    "empty arrays": items(b"[]"),
    "floats": items(b"1.5"),
    "ints": items(b"123456"),
    "short strings": items(b'"ab"'),
    "object of ints": b"{" + b",".join(b'"k%d":1' % i for i in range(20_000)) + b"}",
    "object of strings": b"{" + b",".join(b'"k%d":"v%d"' % (i, i) for i in range(20_000)) + b"}",
    "nested": json.dumps([[{"a": [1, 2, {"b": "c"}]}]] * 5_000).encode(),
    "base64 text": json.dumps({"data": "QUJD" * 100_000}).encode(),
    "escaped astral": json.dumps({"t": "a" * 400_000 + "\U0001f600"}).encode(),
    "raw astral": json.dumps({"t": "a" * 400_000 + "\U0001f600"}, ensure_ascii=False).encode(),
    "cjk": json.dumps({"t": "中" * 100_000}, ensure_ascii=False).encode(),
}


@pytest.mark.parametrize("name", SHAPES)
def test_the_estimate_covers_what_parsing_allocates(name: str) -> None:
    body = SHAPES[name]
    # The decoded copy is transient but real: it is in the peak too.
    assert held_cost(body)[0] >= len(body) + allocated(body)


def test_plain_text_costs_about_three_times_its_size() -> None:
    # The bytes, the str json.loads decodes them to, and the parsed string.
    body = SHAPES["base64 text"]
    assert held_cost(body)[0] < 3.01 * len(body)


def test_escapes_other_than_backslash_u_keep_text_at_one_byte_a_character() -> None:
    # A prompt's many \n and \" are ASCII still; one \u00e9 may widen a str to 2-4 bytes.
    plain = json.dumps({"t": 'line "q"\n' * 50_000}).encode()
    widened = json.dumps({"t": 'line "q"\n' * 50_000 + "\u00e9"}).encode()
    assert held_cost(plain)[0] < 3.01 * len(plain)
    assert held_cost(widened)[0] > 8.9 * len(widened)


@pytest.mark.parametrize("name", SHAPES)
def test_the_container_count_is_the_bodys(name: str) -> None:
    body = SHAPES[name]
    assert held_cost(body)[1] == body.count(b"{") + body.count(b"[")


@pytest.mark.parametrize("levels", [129, 1_000, 5_000, 100_000])
def test_deep_nesting_is_a_400_naming_the_limit(levels: int) -> None:
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        body = b'{"model":"m","metadata":' + opener * levels + b"1" + closer * levels + b"}"
        with pytest.raises(InvalidRequest, match="limit of 128 levels") as err:
            parse(body, 128)
        assert err.value.status == 400


def test_nesting_up_to_the_limit_is_accepted() -> None:
    body = b"[" * 128 + b"]" * 128
    assert depth(parse(body, 128), 200) == 128


def test_invalid_json_is_a_400_without_quoting_the_body() -> None:
    with pytest.raises(InvalidRequest) as err:
        parse(b'{"secret-CANARY": ', 128)
    assert "CANARY" not in err.value.message


def test_depth_counts_objects_and_arrays() -> None:
    assert depth(1, 10) == 0
    assert depth({}, 10) == 1
    assert depth({"a": [1, {"b": []}]}, 10) == 4
    assert depth([[[[[]]]]], 2) == 3  # stops counting past `stop`
