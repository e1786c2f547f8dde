"""The walkers reach every text the model reads, and nothing else."""

from __future__ import annotations

import json
from typing import Any

from gateway.pii.walk import WALKERS

S = "alice@example.org"


def mark(text: str) -> str:
    return text.replace(S, "[EMAIL_1]")


def run(provider: str, kind: str, doc: dict[str, Any]) -> str:
    WALKERS[(provider, kind)](doc, mark)
    return json.dumps(doc)


def test_anthropic_messages_every_text() -> None:
    doc = {
        "model": "m",
        "system": [{"type": "text", "text": f"sys {S}"}],
        "tools": [{"name": "t", "description": "no user text here", "input_schema": {}}],
        "messages": [
            {"role": "user", "content": f"plain {S}"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": f"think {S}", "signature": "sig"},
                    {"type": "text", "text": f"text {S}"},
                    {"type": "tool_use", "id": "tu_1", "name": "send",
                     "input": {"to": S, "cc": [S], "deep": {"x": S}, "n": 3}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "tu_1",
                     "content": [{"type": "text", "text": f"result {S}"}]},
                    {"type": "tool_result", "tool_use_id": "tu_2", "content": f"str {S}"},
                    {"type": "document", "title": f"title {S}",
                     "source": {"type": "text", "media_type": "text/plain", "data": f"doc {S}"}},
                    {"type": "document",
                     "source": {"type": "content", "content": [{"type": "text", "text": S}]}},
                    {"type": "image", "source": {"type": "base64", "data": "QUJD"}},
                ],
            },
        ],
    }  # fmt: skip
    out = run("anthropic", "messages", doc)
    assert S not in out
    assert out.count("[EMAIL_1]") == 12
    assert '"signature": "sig"' in out


def test_anthropic_system_string() -> None:
    doc = {"system": f"hi {S}", "messages": []}
    assert S not in run("anthropic", "count_tokens", doc)


def test_openai_chat_content_parts_and_tool_call_arguments() -> None:
    doc = {
        "messages": [
            {"role": "system", "content": f"sys {S}"},
            {"role": "user", "content": [{"type": "text", "text": f"hi {S}"},
                                         {"type": "image_url", "image_url": {"url": "u"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "send", "arguments": json.dumps({"to": S})}},
                {"id": "c2", "type": "function",
                 "function": {"name": "raw", "arguments": f"not json {S}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": f"sent to {S}"},
        ]
    }  # fmt: skip
    out = run("openai", "chat_completions", doc)
    assert S not in out
    messages: Any = doc["messages"]
    args = messages[2]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(args) == {"to": "[EMAIL_1]"}


def test_openai_responses_input() -> None:
    doc = {
        "instructions": f"be nice to {S}",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": S}]},
            {"type": "function_call", "call_id": "c", "name": "f",
             "arguments": json.dumps({"a": S})},
            {"type": "function_call_output", "call_id": "c", "output": f"ok {S}"},
        ],
    }  # fmt: skip
    assert S not in run("openai", "responses", doc)
    doc2: dict[str, Any] = {"input": f"just {S}"}
    assert S not in run("openai", "responses", doc2)
    assert S not in run("openai", "embeddings", {"input": [S, "x"]})
