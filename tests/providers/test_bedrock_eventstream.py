"""The event stream decoder alone: frames split anywhere, padding, bad CRCs, usage from frames."""

from __future__ import annotations

import base64
import json
import random

from botocore.eventstream import EventStreamBuffer

from gateway.providers.bedrock_eventstream import EventStreamUsage, events
from tests.support.eventstream import chunk, exception, frame

START = {"type": "message_start", "message": {"usage": {"input_tokens": 11, "output_tokens": 1}}}
DELTA = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}}
END = {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 7}}


def decode_all(data: bytes, cuts: list[int]) -> list[tuple[bytes, bytes]]:
    buffer = EventStreamBuffer()
    out: list[tuple[bytes, bytes]] = []
    last = 0
    for cut in [*sorted(cuts), len(data)]:
        buffer.add_data(data[last:cut])
        last = cut
        out.extend(events(buffer))
    return out


def test_frames_split_at_every_position_decode_the_same() -> None:
    data = chunk(START, padding="pp") + chunk(DELTA) + chunk(END, padding="x" * 17)
    whole = decode_all(data, [])
    assert [name for name, _ in whole] == [b"message_start", b"content_block_delta",
                                          b"message_delta"]  # fmt: skip
    assert json.loads(whole[1][1]) == DELTA
    for cut in range(1, len(data)):
        assert decode_all(data, [cut]) == whole
    rng = random.Random(7)
    for _ in range(50):
        assert decode_all(data, rng.sample(range(1, len(data)), 5)) == whole


def test_corrupted_crc_ends_with_an_api_error() -> None:
    data = bytearray(chunk(DELTA))
    data[-1] ^= 0xFF
    [(name, body)] = decode_all(bytes(data), [])
    assert name == b"error"
    assert json.loads(body)["error"]["type"] == "api_error"


def test_multi_line_event_json_is_put_on_one_line() -> None:
    pretty = json.dumps(DELTA, indent=2).encode()
    payload = json.dumps({"bytes": base64.b64encode(pretty).decode()}).encode()
    headers = {":event-type": "chunk", ":message-type": "event"}
    [(name, body)] = decode_all(frame(headers, payload), [])
    assert name == b"content_block_delta"
    assert b"\n" not in body
    assert json.loads(body) == DELTA


def test_usage_read_from_frames_passed_through() -> None:
    reader = EventStreamUsage()
    data = chunk(START) + chunk(DELTA) + chunk(END) + exception("throttlingException", "slow")
    for i in range(0, len(data), 5):
        reader.feed(data[i : i + 5])
    reader.finish()
    assert reader.usage.input_tokens == 11
    assert reader.usage.output_tokens == 7
    assert reader.stream_error == "rate_limit_error"
