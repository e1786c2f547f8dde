"""append_fields: the same document as re-encoding with the fields added."""

from __future__ import annotations

import json

import pytest

from gateway.policy.splice import append_fields


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"gpt-5","messages":[]}',
        b'{"model": "gpt-5", "messages": [{"content": "}"}]}  \n',
        b"{}",
        b"{ \n }",
        '{"m":"caf\u00e9 \\u007d"}'.encode(),
    ],
)
def test_same_document_as_reencoding(raw: bytes) -> None:
    out = append_fields(raw, [("store", False)])
    assert out is not None
    assert json.loads(out) == {**json.loads(raw), "store": False}


def test_not_an_object_is_left_to_the_caller() -> None:
    assert append_fields(b'["x"]', [("store", False)]) is None
    assert append_fields(b"", [("store", False)]) is None
    assert append_fields(b'{"a":1}', []) == b'{"a":1}'
