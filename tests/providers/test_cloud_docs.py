"""docs/clouds.md: every config snippet in it is a valid config (the same validation as
check-config), so the documentation cannot drift from the schema."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config import parse

DOC = Path(__file__).resolve().parents[2] / "docs" / "clouds.md"
SNIPPETS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_has_snippets() -> None:
    assert len(SNIPPETS) >= 3


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_snippet_is_a_valid_config(snippet: str) -> None:
    text = "server: {tls: {enabled: false}}\n" + snippet
    config = parse(text, env={"ANTHROPIC_API_KEY": "k"})
    # Each snippet shows a cloud: an upstream of one, or a cloud target in a pool.
    targets = [t for u in config.upstreams for t in u.pool()]
    assert any(t.provider in ("bedrock", "vertex") for t in targets)
