"""The catalogue: every documented `anthropic-beta` value and typed tool, classified.

The one file to edit when Anthropic documents a new beta or tool version. Each
entry has a class and the source it rests on:

- `eligible`  retains nothing at the provider: passes;
- `refused`   only switches on a feature that is not ZDR-eligible: refused by `rule`;
- `qualified` ZDR-eligible with a retained artifact: follows the operator's
              `policy.qualified.<rule>` toggle.

What a request *does* is judged by structure (endpoint, body field, tool type:
gateway/policy/rules.py), so a beta whose features are partly refused (e.g.
`advanced-tool-use`, which also enables programmatic tool calling) is eligible
here and its refused part is caught by the field that uses it. A value on no
list follows `policy.betas.unlisted` / `policy.tools.unlisted`.

Betas are matched by family (the value without its `-YYYY-MM-DD` or `-YYYYMMDD` date), so a
re-dated release of an eligible beta stays eligible. Tool types are matched
exactly, except the families of refused tools (any version is refused).
Classification per: Anthropic "API and data retention" (current table; an
earlier version listed context management as not eligible), "Beta headers",
and what Claude Code sends (code.claude.com llm-gateway-protocol).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# Bump when an entry changes; shown in /zdr/posture so an auditor can compare replicas.
VERSION = "2026-12-02.1"

ZDR_TABLE = "https://platform.claude.com/docs/en/manage-claude/api-and-data-retention"
BETA_HEADERS = "https://platform.claude.com/docs/en/api/beta-headers"
CLAUDE_CODE = "https://code.claude.com/docs/en/llm-gateway-protocol"
TOOLS_DOC = "https://platform.claude.com/docs/en/agents-and-tools/tool-use/overview"

Class = Literal["eligible", "refused", "qualified"]


@dataclass(frozen=True, slots=True)
class Entry:
    name: str  # a beta family, or an exact tool type (a tool family for refused tools)
    cls: Class
    source: str
    rule: str | None = None  # for refused/qualified: the rule id that decides it


def _e(name: str, source: str = ZDR_TABLE) -> Entry:
    return Entry(name, "eligible", source)


BETAS: tuple[Entry, ...] = (
    # Seen from Claude Code 2.1.x (one print-mode call) and other releases.
    _e("claude-code", CLAUDE_CODE),
    _e("interleaved-thinking"),  # extended/adaptive thinking
    _e("context-management"),  # context editing/compaction: eligible in the current table
    _e("thinking-token-count", CLAUDE_CODE),
    _e("advanced-tool-use"),  # tool search, tool examples; programmatic calls judged by field
    _e("effort"),
    _e("context-1m"),  # 1M context
    _e("prompt-caching-scope", CLAUDE_CODE),  # prompt caching: held in memory for the TTL
    _e("mid-conversation-system"),
    _e("mid-conversation-tool-changes", CLAUDE_CODE),
    _e("advisor-tool"),
    _e("tool-examples", CLAUDE_CODE),
    _e("oauth", CLAUDE_CODE),  # claude.ai login: a credential flavour, no feature
    # Documented elsewhere in the beta headers list.
    _e("prompt-caching", BETA_HEADERS),
    _e("extended-cache-ttl", BETA_HEADERS),
    _e("token-efficient-tools", BETA_HEADERS),
    _e("fine-grained-tool-streaming"),
    _e("output-128k", BETA_HEADERS),
    _e("computer-use"),  # client-side tool
    _e("token-counting"),
    _e("pdfs", BETA_HEADERS),
    _e("search-results"),
    _e("compact"),
    _e("model-context-window-exceeded", BETA_HEADERS),
    Entry("structured-outputs", "qualified", ZDR_TABLE, "anthropic.structured_outputs"),
    Entry("files-api", "refused", ZDR_TABLE, "anthropic.beta.files_api"),
    Entry("code-execution", "refused", ZDR_TABLE, "anthropic.beta.code_execution"),
    Entry("mcp-client", "refused", ZDR_TABLE, "anthropic.beta.mcp_client"),
    Entry("skills", "refused", ZDR_TABLE, "anthropic.beta.skills"),
)

TOOLS: tuple[Entry, ...] = (
    # Client-side tools (the application runs them): eligible.
    *(
        _e(t, TOOLS_DOC)
        for t in (
            "custom",
            "bash_20241022",
            "bash_20250124",
            "text_editor_20241022",
            "text_editor_20250124",
            "text_editor_20250429",
            "text_editor_20250728",
            "computer_20241022",
            "computer_20250124",
            "computer_20251124",
            "memory_20250818",
        )
    ),
    # Server tools without a container: eligible.
    _e("web_search_20250305"),
    _e("web_fetch_20250910"),
    _e("tool_search_tool_regex_20251119"),
    _e("tool_search_tool_bm25_20251119"),
    _e("advisor_20260301"),
    # Dynamic filtering runs code execution on the fetched pages.
    Entry("web_search_20260209", "qualified", ZDR_TABLE, "anthropic.web_dynamic_filtering"),
    Entry("web_fetch_20260209", "qualified", ZDR_TABLE, "anthropic.web_dynamic_filtering"),
    # Families refused at any version.
    Entry("code_execution", "refused", ZDR_TABLE, "anthropic.code_execution"),
    Entry("mcp_toolset", "refused", ZDR_TABLE, "anthropic.mcp_servers"),
)

_BETA = {e.name: e for e in BETAS}
_TOOL = {e.name: e for e in TOOLS}
_DATED_BETA = re.compile(r"-\d{4}-?\d{2}-?\d{2}$")  # claude-code-20250219 has no dashes
_DATED_TOOL = re.compile(r"_\d{8}$")


def beta(value: str) -> Entry | None:
    """The catalogue entry for one `anthropic-beta` value; None when unlisted."""
    return _BETA.get(_DATED_BETA.sub("", value, count=1))


def tool(kind: str) -> Entry | None:
    """The catalogue entry for a `tools[].type`; None when unlisted."""
    hit = _TOOL.get(kind)
    if hit is not None:
        return hit
    family = _TOOL.get(_DATED_TOOL.sub("", kind, count=1))
    return family if family is not None and family.cls == "refused" else None


def posture() -> dict[str, object]:
    """The catalogue as /zdr/posture shows it."""
    return {
        "version": VERSION,
        "betas": [_row(e, "family") for e in BETAS],
        "tools": [_row(e, "type") for e in TOOLS],
    }


def _row(e: Entry, key: str) -> dict[str, object]:
    return {key: e.name, "class": e.cls, "rule": e.rule, "source": e.source}
