"""Restore in a Bedrock event stream, property-based: any answer with placeholders, in
random deltas, as chunk frames cut into random network chunks, comes back as valid frames
(botocore checks both CRCs) whose events equal the answer with the originals in; frames
with nothing to restore go out byte for byte."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.pii.eventstream import EventStreamRestorer
from gateway.pii.restore import Originals
from gateway.pii.stream import RestoreError
from tests.pii.test_stream import ORIGINALS, chunked, restored, restored_json, splits, texts
from tests.support import eventstream


def run(chunks: list[bytes]) -> bytes:
    restorer = EventStreamRestorer(Originals(ORIGINALS))
    return b"".join(restorer.feed(c) for c in chunks) + restorer.finish()


def decoded(stream: bytes) -> list[dict[str, Any]]:
    buffer = EventStreamBuffer()
    buffer.add_data(stream)
    out = []
    for message in buffer:  # raises on a bad CRC or length
        assert message.headers[":event-type"] == "chunk"
        out.append(json.loads(base64.b64decode(json.loads(message.payload)["bytes"])))
    return out


@st.composite
def bedrock_stream(draw: st.DrawFn) -> tuple[bytes, str, str]:
    text = draw(texts)
    tool_json = json.dumps({"to": draw(texts), "n": 1, "list": [draw(texts)]})
    padding = draw(st.sampled_from(["", "abcdefghij"]))
    frames = [eventstream.chunk({"type": "message_start", "message": {"content": []}})]
    for index, (dtype, field, value) in enumerate(
        [("text_delta", "text", text), ("input_json_delta", "partial_json", tool_json)]
    ):
        frames.append(eventstream.chunk({"type": "content_block_start", "index": index}))
        for part in splits(draw, value):
            delta = {"type": dtype, field: part}
            event = {"type": "content_block_delta", "index": index, "delta": delta}
            frames.append(eventstream.chunk(event, padding))
        frames.append(eventstream.chunk({"type": "content_block_stop", "index": index}))
    frames.append(eventstream.chunk({"type": "message_delta", "delta": {}}))
    frames.append(eventstream.chunk({"type": "message_stop"}))
    return b"".join(frames), text, tool_json


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_bedrock_event_stream_restores_exactly(data: st.DataObject) -> None:
    stream, text, tool_json = data.draw(bedrock_stream())
    out = run(chunked(data.draw, stream))
    got: dict[int, str] = {}
    kinds = []
    for event in decoded(out):
        kinds.append(event["type"])
        if event["type"] == "content_block_delta":
            delta = event["delta"]
            field = "text" if delta["type"] == "text_delta" else "partial_json"
            got[event["index"]] = got.get(event["index"], "") + delta[field]
    assert got.get(0, "") == restored(text)
    assert json.loads(got[1]) == json.loads(restored_json(tool_json))
    provider = [e["type"] for e in decoded(stream) if e["type"] != "content_block_delta"]
    assert [k for k in kinds if k != "content_block_delta"] == provider


def test_frames_with_nothing_to_restore_pass_byte_for_byte() -> None:
    frames = [
        eventstream.chunk({"type": "message_start", "message": {"content": []}}),
        eventstream.chunk(
            {"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": "plain [x] text"}}, "pad"),
        eventstream.exception("throttlingException", "slow down [EMAIL_1]"),
    ]  # fmt: skip
    stream = b"".join(frames)
    restorer = EventStreamRestorer(Originals(ORIGINALS))
    # Fed one byte at a time: each frame goes out whole, as soon as it is whole.
    out = [restorer.feed(stream[i : i + 1]) for i in range(len(stream))]
    assert [o for o in out if o] == frames
    assert restorer.finish() == b""


def test_a_rewritten_frame_keeps_its_headers_and_padding() -> None:
    event = {"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": "to [EMAIL_1] now"}}  # fmt: skip
    raw = eventstream.chunk(event, "padpadpad")
    out = run([raw])
    assert out[12:100].startswith(raw[12 : 12 + int.from_bytes(raw[4:8], "big")])
    buffer = EventStreamBuffer()
    buffer.add_data(out)
    (message,) = list(buffer)
    payload = json.loads(message.payload)
    assert payload["p"] == "padpadpad"
    assert orjson.loads(base64.b64decode(payload["bytes"]))["delta"]["text"] == (
        f"to {ORIGINALS['[EMAIL_1]']} now"
    )


def test_a_frame_past_the_cap_stops_the_restore() -> None:
    restorer = EventStreamRestorer(Originals(ORIGINALS), max_frame=1024)
    with pytest.raises(RestoreError):
        restorer.feed((4096).to_bytes(4, "big") + b"\0" * 8)
