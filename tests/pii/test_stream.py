"""Stream restore, property-based: any answer with placeholders, split into random
deltas, events and network chunks, in each SSE line-ending style, comes back equal to
the answer with the originals in, with the provider's events in their order."""

from __future__ import annotations

import itertools
import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.pii.restore import Originals
from gateway.pii.stream import StreamRestorer

ORIGINALS = {
    "[EMAIL_1]": "alice@example.org",
    "[EMAIL_2]": 'bob "quoted" \\ <b@x.org>',  # needs escaping at every depth
    "[PHONE_1]": "+1 415-555-2671",
    "[CLIENT_12]": "Acme Corp\nLtd",
}
ENDINGS = [b"\n", b"\r\n", b"\r"]

# Text made of placeholders, look-alikes that are not ours, brackets and plain words.
piece = st.sampled_from(
    [*ORIGINALS, "[EMAIL_3]", "[EMAIL", "[", "]", "[x]", "[A", "hello ", "é ", '"', "\\", " "]
)
texts = st.lists(piece, min_size=1, max_size=12).map("".join)


def splits(draw: Any, text: str) -> list[str]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=6))))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def restored(text: str) -> str:
    for placeholder, original in ORIGINALS.items():
        text = text.replace(placeholder, original)
    return text


def sse(le: bytes, data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}".encode() + le if event else b""
    return head + b"data: " + orjson.dumps(data) + le + le


def chunked(draw: Any, stream: bytes) -> list[bytes]:
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=10))))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def run(provider: str, chunks: list[bytes]) -> bytes:
    restorer = StreamRestorer(Originals(ORIGINALS), provider)
    return b"".join(restorer.feed(c) for c in chunks) + restorer.finish()


def events(stream: bytes, le: bytes) -> list[tuple[str | None, Any]]:
    out = []
    for raw in stream.split(le + le):
        if not raw:
            continue
        name, data = None, b""
        for line in raw.split(le):
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:]
        out.append((name, data if data == b"[DONE]" else orjson.loads(data)))
    return out


@st.composite
def anthropic_stream(draw: st.DrawFn) -> tuple[bytes, bytes, str, str, str]:
    le = draw(st.sampled_from(ENDINGS))
    text, thinking = draw(texts), draw(texts)
    tool_input = {"to": draw(texts), "n": 1, "list": [draw(texts)]}
    tool_json = json.dumps(tool_input)
    out = sse(le, {"type": "message_start", "message": {"content": []}}, "message_start")
    blocks = [("thinking_delta", "thinking", thinking), ("text_delta", "text", text)]
    blocks.append(("input_json_delta", "partial_json", tool_json))
    for index, (dtype, field, value) in enumerate(blocks):
        out += sse(le, {"type": "content_block_start", "index": index}, "content_block_start")
        for part in splits(draw, value):
            delta = {"type": dtype, field: part}
            out += sse(
                le,
                {"type": "content_block_delta", "index": index, "delta": delta},
                "content_block_delta",
            )
            if draw(st.booleans()):
                out += sse(le, {"type": "ping"}, "ping")
        out += sse(le, {"type": "content_block_stop", "index": index}, "content_block_stop")
    out += sse(le, {"type": "message_delta", "delta": {}}, "message_delta")
    out += sse(le, {"type": "message_stop"}, "message_stop")
    return out, le, thinking, text, tool_json


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_anthropic_stream_restores_exactly(data: st.DataObject) -> None:
    stream, le, thinking, text, tool_json = data.draw(anthropic_stream())
    out = run("anthropic", chunked(data.draw, stream))
    got: dict[int, str] = {}
    kinds = []
    for name, payload in events(out, le):
        kinds.append(name)
        assert name == payload["type"]
        if name == "content_block_delta":
            delta = payload["delta"]
            field = {"text_delta": "text", "thinking_delta": "thinking"}.get(
                delta["type"], "partial_json"
            )
            got[payload["index"]] = got.get(payload["index"], "") + delta[field]
    assert got.get(0, "") == restored(thinking)
    assert got.get(1, "") == restored(text)
    # The tool input, once accumulated and parsed (as the SDKs do), has the originals.
    assert json.loads(got[2]) == json.loads(restored_json(tool_json))
    # Provider events keep their order; only deltas may be added, inside their block.
    provider_kinds = [n for n, _ in events(stream, le) if n != "content_block_delta"]
    assert [k for k in kinds if k != "content_block_delta"] == provider_kinds
    assert_blocks_in_order(events(out, le))


def restored_json(tool_json: str) -> str:
    doc = json.loads(tool_json)
    doc["to"] = restored(doc["to"])
    doc["list"] = [restored(x) for x in doc["list"]]
    return json.dumps(doc)


def assert_blocks_in_order(evs: list[tuple[str | None, Any]]) -> None:
    open_index = None
    for name, payload in evs:
        if name == "content_block_start":
            open_index = payload["index"]
        elif name == "content_block_delta":
            assert payload["index"] == open_index  # never outside its block
        elif name == "content_block_stop":
            assert payload["index"] == open_index
            open_index = None


@st.composite
def openai_stream(draw: st.DrawFn) -> tuple[bytes, bytes, str, str]:
    le = draw(st.sampled_from(ENDINGS))
    text = draw(texts)
    args = json.dumps({"email": draw(texts)})
    env = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    out = b""
    for part in splits(draw, text):
        choice = {"index": 0, "delta": {"content": part}, "finish_reason": None}
        out += sse(le, {**env, "choices": [choice]})
    for part in splits(draw, args):
        call = {"index": 0, "function": {"arguments": part}}
        choice = {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}
        out += sse(le, {**env, "choices": [choice]})
    out += sse(le, {**env, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    out += b"data: [DONE]" + le + le
    return out, le, text, args


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_openai_stream_restores_exactly(data: st.DataObject) -> None:
    stream, le, text, args = data.draw(openai_stream())
    out = run("openai", chunked(data.draw, stream))
    content, arguments = "", ""
    evs = events(out, le)
    assert evs[-1][1] == b"[DONE]"
    finished = False
    for _, payload in evs[:-1]:
        assert not finished  # nothing after the finishing chunk
        choice = payload["choices"][0]
        assert payload["id"] == "chatcmpl-1"
        content += choice["delta"].get("content") or ""
        for call in choice["delta"].get("tool_calls") or []:
            arguments += call["function"]["arguments"]
        finished = choice["finish_reason"] is not None
    assert content == restored(text)
    assert json.loads(arguments) == {"email": restored(json.loads(args)["email"])}


@st.composite
def responses_stream(draw: st.DrawFn) -> tuple[bytes, bytes, str, str]:
    """An OpenAI Responses stream: a message's text, then a function call's arguments."""
    le = draw(st.sampled_from(ENDINGS))
    text = draw(texts)
    args = json.dumps({"email": draw(texts)})
    seq = itertools.count()

    def ev(kind: str, **fields: Any) -> bytes:
        return sse(le, {"type": kind, "sequence_number": next(seq), **fields}, kind)

    msg = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    call = {"item_id": "fc_1", "output_index": 1}
    out = ev("response.created", response={"id": "resp_1", "output": []})
    out += ev("response.output_item.added", output_index=0, item={"id": "msg_1"})
    out += ev("response.content_part.added", **msg, part={"type": "output_text", "text": ""})
    for part in splits(draw, text):
        out += ev("response.output_text.delta", **msg, delta=part, logprobs=[])
    out += ev("response.output_text.done", **msg, text=text)
    out += ev("response.content_part.done", **msg, part={"type": "output_text", "text": text})
    out += ev("response.output_item.done", output_index=0, item={"id": "msg_1"})
    out += ev("response.output_item.added", output_index=1, item={"id": "fc_1"})
    for part in splits(draw, args):
        out += ev("response.function_call_arguments.delta", **call, delta=part)
    out += ev("response.function_call_arguments.done", **call, arguments=args)
    item = {"id": "fc_1", "type": "function_call", "arguments": args}
    out += ev("response.output_item.done", output_index=1, item=item)
    message = {"type": "message", "content": [{"type": "output_text", "text": text}]}
    done = {"id": "resp_1", "status": "completed", "output": [message, item]}
    out += ev("response.completed", response=done)
    return out, le, text, args


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_responses_stream_restores_exactly(data: st.DataObject) -> None:
    stream, le, text, args = data.draw(responses_stream())
    out = run("openai", chunked(data.draw, stream))
    content, arguments, done_text = "", "", None
    done_args: list[str] = []  # the whole arguments, as .done and completed events repeat them
    ended: set[tuple[int, int | None]] = set()
    for name, payload in events(out, le):
        assert name == payload["type"]
        part = (payload.get("output_index"), payload.get("content_index"))
        if name == "response.output_text.delta":
            assert part not in ended  # a held prefix goes out inside its part
            content += payload["delta"]
        elif name == "response.function_call_arguments.delta":
            assert part not in ended
            arguments += payload["delta"]
        elif name == "response.output_text.done":
            done_text = payload["text"]
        elif name == "response.function_call_arguments.done":
            done_args.append(payload["arguments"])
        elif name == "response.output_item.done" and payload["output_index"] == 1:
            done_args.append(payload["item"]["arguments"])
        elif name == "response.completed":
            message, item = payload["response"]["output"]
            assert message["content"][0]["text"] == restored(text)
            done_args.append(item["arguments"])
        if name and name.endswith(".done"):
            ended.add(part)
    assert content == restored(text)
    assert done_text == restored(text)
    assert json.loads(arguments) == {"email": restored(json.loads(args)["email"])}
    # JSON in a JSON string: the original escaped for that depth, so it still parses.
    assert len(done_args) == 3
    assert all(json.loads(a) == json.loads(arguments) for a in done_args)
    # The provider's events keep their order; only deltas may be added.
    provider = [n for n, _ in events(stream, le) if n and not n.endswith(".delta")]
    assert [n for n, _ in events(out, le) if n and not n.endswith(".delta")] == provider


@given(st.binary(max_size=200).filter(lambda b: b"[" not in b), st.sampled_from(ENDINGS))
def test_a_chunk_without_a_bracket_passes_at_once(chunk: bytes, le: bytes) -> None:
    restorer = StreamRestorer(Originals(ORIGINALS), "anthropic")
    first = sse(le, {"type": "ping"}, "ping")
    assert restorer.feed(first) == first
    assert restorer.feed(chunk) == chunk


def test_only_a_possible_prefix_is_held_and_flushed_at_the_end() -> None:
    restorer = StreamRestorer(Originals(ORIGINALS), "anthropic")
    delta = {"type": "text_delta", "text": "see [EMAI"}
    data = {"type": "content_block_delta", "index": 0, "delta": delta}
    event = sse(b"\n", data, "content_block_delta")
    out = restorer.feed(event)
    assert b"see " in out
    assert b"[EMAI" not in out
    rest = restorer.finish()  # the stream ended mid-prefix: what was held goes out
    assert b'"text":"[EMAI"' in rest
    assert b'"index":0' in rest
