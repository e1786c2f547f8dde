"""The per-request vault: stable placeholders, no collisions, mask and block."""

from __future__ import annotations

import json

import orjson
import pytest

from gateway.pii.detect import Detectors
from gateway.pii.restore import Originals, escaped, restore_json
from gateway.pii.settings import PiiSettings
from gateway.pii.vault import Blocked, Vault, taken_placeholders

SETTINGS = PiiSettings.model_validate(
    {"default": {"email": "pseudonymise", "card": "mask", "iban": "block", "phone": "off"}}
)
DETECTORS = Detectors.build(SETTINGS)
MODES = {"email": "pseudonymise", "card": "mask", "iban": "block"}


def vault(taken: set[str] | None = None) -> Vault:
    return Vault(DETECTORS, MODES, taken or set())  # type: ignore[arg-type]


def test_same_value_same_placeholder_across_texts() -> None:
    v = vault()
    a = v.replace("from a@x.org to b@y.org")
    b = v.replace("cc a@x.org")
    assert a == "from [EMAIL_1] to [EMAIL_2]"
    assert b == "cc [EMAIL_1]"
    assert v.originals == {"[EMAIL_1]": "a@x.org", "[EMAIL_2]": "b@y.org"}
    assert v.counts == {"email": 3}


def test_placeholders_already_in_the_request_are_never_handed_out() -> None:
    body = json.dumps({"m": "keep [EMAIL_1] and \u005bEMAIL_2]", "n": "x@y.org"}).encode()
    body = body.replace(b"[EMAIL_2]", b"\\u005bEMAIL_2]")
    taken = taken_placeholders(body, json.loads(body))
    assert taken == {"[EMAIL_1]", "[EMAIL_2]"}
    v = vault(taken)
    assert v.replace("x@y.org") == "[EMAIL_3]"


def test_mask_is_irreversible_and_off_is_untouched() -> None:
    v = vault()
    out = v.replace("card 4111 1111 1111 1111, call +1 415-555-2671")
    assert out == "card [CARD], call +1 415-555-2671"
    assert v.originals == {}
    assert v.counts == {"card": 1}


def test_block_names_the_category_only() -> None:
    with pytest.raises(Blocked) as info:
        vault().replace("pay DE89 3704 0044 0532 0130 00")
    assert info.value.category == "iban"
    assert "DE89" not in str(info.value)


@pytest.mark.parametrize("original", ['a "b" \\ c', "line\nbreak", "é€😀", "</x>"])
def test_escaped_forms_decode_back(original: str) -> None:
    one = escaped(original, 1)
    assert json.loads(b'"' + one + b'"') == original
    two = escaped(original, 2)
    inner = json.loads(b'"' + two + b'"')
    assert json.loads('"' + inner + '"') == original


def test_json_answers_get_originals_back_at_the_right_depth() -> None:
    o = Originals({"[EMAIL_1]": 'a"b@x.org', "[X_1]": "y"})
    anthropic = {
        "content": [
            {"type": "text", "text": "mail [EMAIL_1], not [EMAIL_9]"},
            {"type": "tool_use", "input": {"to": ["[EMAIL_1]"], "n": 1}},
        ]
    }
    out = orjson.loads(restore_json(orjson.dumps(anthropic), o))
    assert out["content"][0]["text"] == 'mail a"b@x.org, not [EMAIL_9]'
    assert out["content"][1]["input"] == {"to": ['a"b@x.org'], "n": 1}
    args = json.dumps({"to": "[EMAIL_1]"})
    openai = {"choices": [{"message": {"tool_calls": [{"function": {"arguments": args}}]}}]}
    out = orjson.loads(restore_json(orjson.dumps(openai), o))
    fn = out["choices"][0]["message"]["tool_calls"][0]["function"]
    assert json.loads(fn["arguments"]) == {"to": 'a"b@x.org'}
    assert restore_json(b'{"a":"no brackets"}', o) == b'{"a":"no brackets"}'
