from __future__ import annotations

import json

from gateway.ratelimit.estimate import IMAGE_TOKENS, estimate_input_tokens


def test_text_is_bytes_over_three_rounded_up() -> None:
    assert estimate_input_tokens(b"") == 0
    assert estimate_input_tokens(b"abcd") == 2
    assert estimate_input_tokens(3000) == 1000


def test_estimate_is_not_below_a_typical_english_prompt() -> None:
    prose = "The quick brown fox jumps over the lazy dog. " * 200  # ~2,000 real tokens
    doc = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": prose}]}
    body = json.dumps(doc).encode()
    assert estimate_input_tokens(body, doc) >= 2000


def test_base64_image_counts_as_a_fixed_cost_not_its_size() -> None:
    data = "A" * 3_000_000
    block = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    doc = {"messages": [{"role": "user", "content": [block, {"type": "text", "text": "hi"}]}]}
    body = json.dumps(doc).encode()
    estimate = estimate_input_tokens(body, doc)
    assert IMAGE_TOKENS < estimate < IMAGE_TOKENS + 100


def test_images_inside_tool_results_are_found() -> None:
    img = {"type": "image", "source": {"type": "base64", "data": "B" * 30_000}}
    doc = {"messages": [{"role": "user", "content": [{"type": "tool_result", "content": [img]}]}]}
    assert estimate_input_tokens(json.dumps(doc).encode(), doc) < IMAGE_TOKENS + 100


def test_malformed_shapes_fall_back_to_size() -> None:
    for doc in (
        {"messages": "x"},
        {"messages": [1, "a", {"content": "s"}, {"content": [1, {"type": "image"}]}]},
        {"messages": [{"content": [{"type": "image", "source": {"type": "url", "data": 5}}]}]},
    ):
        body = json.dumps(doc).encode()
        assert estimate_input_tokens(body, doc) == -(-len(body) // 3)
