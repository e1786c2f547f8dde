"""A model list cut to the caller's model scopes (`GET /v1/models`, SDK `models.list()`).

Anthropic and OpenAI both answer `{"data": [{"id": ...}, ...], ...}`; entries whose id
the key may not use are removed, so a client (Claude Code's gateway model discovery
among them) offers only models that will work. Anthropic's page cursors `first_id` /
`last_id` follow the kept entries; when a page kept none but more follow, `last_id`
stays the upstream's so pagination goes on.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

# A model list is a few KB; anything far larger is not one.
MAX_LIST_BYTES = 4 << 20


def filter_model_list(body: bytes, allowed: Callable[[str], bool]) -> bytes | None:
    """The list with only allowed models; None when `body` is not a model list."""
    try:
        doc = orjson.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        return None
    kept = [
        m
        for m in doc["data"]
        if isinstance(m, dict) and isinstance(m.get("id"), str) and allowed(m["id"])
    ]
    doc["data"] = kept
    if "first_id" in doc:
        doc["first_id"] = kept[0]["id"] if kept else None
    if "last_id" in doc and (kept or not doc.get("has_more")):
        doc["last_id"] = kept[-1]["id"] if kept else None
    return orjson.dumps(doc)
