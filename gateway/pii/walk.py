"""Every text the model reads in a request body, handed to `fix` and written back.

Anthropic Messages (and count_tokens): `system`; message text blocks; `tool_use.input`
(every string in the JSON); `tool_result` content, nested blocks included; documents
with a plain-text source (and `content` sources, whose blocks are walked), their
title and context; `thinking` text (see docs/pii.md on signatures).
OpenAI chat completions: `messages[].content` (string or text parts), `name`-less tool
call `function.arguments` (a JSON string: parsed, walked, re-serialised; text if it is
not JSON). Responses: `instructions` and `input` (string, or items with content parts,
function call arguments and outputs). Completions/embeddings/moderations: `prompt`/`input`.

Tool names, ids, schemas and images are not text the user wrote and are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Fix = Callable[[str], str]
Walker = Callable[[dict[str, Any], Fix], None]


def deep(value: Any, fix: Fix) -> Any:
    """Every string value in a JSON value (object keys are left as they are)."""
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, list):
        return [deep(v, fix) for v in value]
    if isinstance(value, dict):
        return {k: deep(v, fix) for k, v in value.items()}
    return value


def _field(obj: dict[str, Any], key: str, fix: Fix) -> None:
    value = obj.get(key)
    if isinstance(value, str):
        obj[key] = fix(value)


def _anthropic_blocks(content: Any, fix: Fix) -> Any:
    if isinstance(content, str):
        return fix(content)
    if not isinstance(content, list):
        return content
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            _field(block, "text", fix)
        elif kind == "tool_use" or kind == "server_tool_use":
            if "input" in block:
                block["input"] = deep(block["input"], fix)
        elif kind == "tool_result":
            if "content" in block:
                block["content"] = _anthropic_blocks(block["content"], fix)
        elif kind == "document":
            _field(block, "title", fix)
            _field(block, "context", fix)
            source = block.get("source")
            if isinstance(source, dict):
                if source.get("type") == "text":
                    _field(source, "data", fix)
                elif source.get("type") == "content":
                    source["content"] = _anthropic_blocks(source.get("content"), fix)
        elif kind == "thinking":
            _field(block, "thinking", fix)
    return content


def anthropic_messages(doc: dict[str, Any], fix: Fix) -> None:
    if "system" in doc:
        doc["system"] = _anthropic_blocks(doc["system"], fix)
    messages = doc.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and "content" in message:
                message["content"] = _anthropic_blocks(message["content"], fix)


def _arguments(value: str, fix: Fix) -> str:
    try:
        parsed = json.loads(value)
    except ValueError:
        return fix(value)
    return json.dumps(deep(parsed, fix), ensure_ascii=False, separators=(",", ":"))


def _openai_parts(content: Any, fix: Fix) -> Any:
    if isinstance(content, str):
        return fix(content)
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                _field(part, "text", fix)  # text / input_text / output_text parts
    return content


def openai_chat(doc: dict[str, Any], fix: Fix) -> None:
    messages = doc.get("messages")
    if not isinstance(messages, list):
        return
    for message in messages:
        if not isinstance(message, dict):
            continue
        if "content" in message:
            message["content"] = _openai_parts(message["content"], fix)
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    fn["arguments"] = _arguments(fn["arguments"], fix)


def openai_responses(doc: dict[str, Any], fix: Fix) -> None:
    _field(doc, "instructions", fix)
    items = doc.get("input")
    if isinstance(items, str):
        doc["input"] = fix(items)
        return
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict):
            continue
        if "content" in item:
            item["content"] = _openai_parts(item["content"], fix)
        if isinstance(item.get("arguments"), str):
            item["arguments"] = _arguments(item["arguments"], fix)
        _field(item, "output", fix)  # function_call_output


def _plain(key: str) -> Walker:
    def walk(doc: dict[str, Any], fix: Fix) -> None:
        if key in doc:
            doc[key] = deep(doc[key], fix)

    return walk


WALKERS: dict[tuple[str, str], Walker] = {
    ("anthropic", "messages"): anthropic_messages,
    ("anthropic", "count_tokens"): anthropic_messages,
    ("openai", "chat_completions"): openai_chat,
    ("openai", "responses"): openai_responses,
    ("openai", "completions"): _plain("prompt"),
    ("openai", "embeddings"): _plain("input"),
    ("openai", "moderations"): _plain("input"),
}
