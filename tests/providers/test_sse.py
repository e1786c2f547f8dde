"""The incremental SSE splitter: events split anywhere, bounded memory."""

from __future__ import annotations

import json
import random

import pytest

from gateway.providers.anthropic import AnthropicStreamUsage
from gateway.providers.sse import SSESplitter

STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"usage":{"input_tokens":25,'
    b'"cache_creation_input_tokens":7,"cache_read_input_tokens":3,"output_tokens":1}}}\n\n'
    b"event: ping\ndata: {}\n\n"
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"hi"}}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","usage":{"output_tokens":10}}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","usage":{"output_tokens":15}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def _usage(chunks: list[bytes]) -> tuple[int, int, int, int]:
    reader = AnthropicStreamUsage()
    for c in chunks:
        reader.feed(c)
    reader.finish()
    u = reader.usage
    return (
        u.input_tokens,
        u.output_tokens,
        u.cache_creation_input_tokens,
        u.cache_read_input_tokens,
    )


EXPECTED = (25, 15, 7, 3)  # message_delta usage is cumulative: the last value, not the sum


def test_whole_stream() -> None:
    assert _usage([STREAM]) == EXPECTED


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_other_line_endings(newline: bytes) -> None:
    assert _usage([STREAM.replace(b"\n", newline)]) == EXPECTED


def test_split_at_every_byte_position() -> None:
    for i in range(1, len(STREAM)):
        assert _usage([STREAM[:i], STREAM[i:]]) == EXPECTED, i


def test_split_at_every_byte_position_crlf() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    for i in range(1, len(crlf)):
        assert _usage([crlf[:i], crlf[i:]]) == EXPECTED, i


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_random_chunkings_see_every_event_once(newline: bytes) -> None:
    """Three and more chunks, cut at random places: every event reaches the caller once,
    whole, in order, whatever the cuts (a pending event, then events in the chunk)."""
    rng = random.Random(7)
    stream = STREAM.replace(b"\n", newline) * 3
    wanted = frozenset({b"message_start", b"ping", b"message_delta", b"message_stop"})

    def events(chunks: list[bytes]) -> list[tuple[bytes, bytes]]:
        seen: list[tuple[bytes, bytes]] = []
        splitter = SSESplitter(wanted, lambda name, data: seen.append((name, data)))
        for chunk in chunks:
            splitter.feed(chunk)
        return seen

    whole = events([stream])
    assert len(whole) == 15
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(2, 12)))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert events(chunks) == whole, cuts


def test_one_byte_chunks() -> None:
    assert _usage([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_mid_stream_error_recorded() -> None:
    err = (
        b"event: error\n"
        b'data: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n'
    )
    reader = AnthropicStreamUsage()
    reader.feed(STREAM[:200] + b"\n\n" + err)
    assert reader.stream_error == "overloaded_error"


def test_unknown_error_type_is_bounded() -> None:
    reader = AnthropicStreamUsage()
    reader.feed(b'event: error\ndata: {"error":{"type":"CANARY-free-text"}}\n\n')
    assert reader.stream_error == "other"


def test_oversized_event_is_dropped_and_buffer_stays_bounded() -> None:
    seen: list[bytes] = []
    splitter = SSESplitter(frozenset({b"big", b"small"}), lambda e, d: seen.append(e), 1024)
    splitter.feed(b"event: big\ndata: " + b"x" * 5000)
    assert len(splitter._buf) == 0  # dropped, not held
    splitter.feed(b"x" * 5000 + b"\n\nevent: small\ndata: {}\n\n")
    assert seen == [b"small"]


def test_unwanted_events_are_not_decoded() -> None:
    seen: list[tuple[bytes, bytes]] = []
    splitter = SSESplitter(frozenset({b"message_delta"}), lambda e, d: seen.append((e, d)))
    splitter.feed(STREAM)
    assert [e for e, _ in seen] == [b"message_delta", b"message_delta"]
    assert json.loads(seen[-1][1])["usage"]["output_tokens"] == 15


def test_event_without_trailing_blank_line_is_read_at_finish() -> None:
    tail = b'event: message_delta\ndata: {"usage":{"output_tokens":4}}\n'
    reader = AnthropicStreamUsage()
    reader.feed(tail)
    assert reader.usage.output_tokens == 0
    reader.finish()
    assert reader.usage.output_tokens == 4


def test_stream_cut_before_message_delta_charges_the_deltas_seen() -> None:
    start = STREAM.split(b"event: message_delta")[0]
    deltas = b"".join(
        b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n' for _ in range(9)
    )
    reader = AnthropicStreamUsage()
    reader.feed(start + deltas)
    reader.finish()
    assert reader.usage.output_tokens == 10  # 1 delta in STREAM's head + 9
    assert reader.usage.input_tokens == 25


def test_final_usage_wins_over_the_delta_count() -> None:
    assert _usage([STREAM]) == EXPECTED  # 1 delta, but message_delta says 15


def test_names_only_events_are_reported_without_their_data() -> None:
    seen: list[tuple[bytes, bytes]] = []
    splitter = SSESplitter(
        frozenset({b"message_delta"}),
        lambda e, d: seen.append((e, d)),
        names_only=frozenset({b"content_block_delta"}),
    )
    for i in range(1, len(STREAM)):  # split anywhere: still one report per event
        seen.clear()
        splitter.feed(STREAM[:i])
        splitter.feed(STREAM[i:])
        assert [e for e, _ in seen] == [b"content_block_delta", b"message_delta", b"message_delta"]
        assert seen[0][1] == b""  # the delta's text is not handed over


@pytest.mark.parametrize(
    ("raw", "data"),
    [
        (b"event: e\ndata: {}\n\n", b"{}"),
        (b"event: e\ndata:{}\n\n", b"{}"),  # the space after the colon is optional
        (b"event: e\ndata:  {}\n\n", b" {}"),  # only one space is removed
        (b"event: e\ndata: a\ndata: b\n\n", b"a\nb"),  # several data lines join with \n
        (b"event: e\n: a comment\ndata: x\n\n", b"x"),
        (b"event: e\nid: 7\ndata: x\n\n", b"x"),
        (b"event: e\ndata: x\r\n\r\n", b"x"),
    ],
)
def test_event_data_per_the_sse_spec(raw: bytes, data: bytes) -> None:
    seen: list[bytes] = []
    splitter = SSESplitter(frozenset({b"e"}), lambda name, value: seen.append(value))
    splitter.feed(raw)
    assert seen == [data]
