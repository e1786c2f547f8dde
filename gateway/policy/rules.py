"""The ZDR policy as data: one declarative table of rules.

Each rule names what it matches (an endpoint kind, a body feature, an
`anthropic-beta` value), what it does (refuse, or rewrite the body), the
message a developer can act on, and the provider documentation it rests on.
Beta values and tool types are classified in gateway/policy/catalogue.py; the
rules they lead to live here (matcher `CATALOGUED`).
Rule ids are fixed strings: they are the bounded `rule` metric label and the
audit trail's decision names. `judge()` (gateway/policy/judge.py) evaluates
the table; nothing else in the gateway knows which features are retained.

Messages are gateway-authored and never quote the request (zero retention:
a refused body's content must not come back in the error either).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ANTHROPIC_DOC = "https://platform.claude.com/docs/en/manage-claude/api-and-data-retention"
ANTHROPIC_TITLE = "Anthropic: API and data retention — feature eligibility"
OPENAI_DOC = "https://platform.openai.com/docs/guides/your-data"
OPENAI_TITLE = "OpenAI: Data controls in the OpenAI platform (your data)"

# Feature rules apply where a request body reaches a model.
ANTHROPIC_MODEL_ENDPOINTS = frozenset({"messages", "count_tokens"})
OPENAI_MODEL_ENDPOINTS = frozenset({"chat_completions", "responses"})


@dataclass(frozen=True, slots=True)
class Request:
    """What the matchers may look at: bounded kinds, the parsed body, the beta list."""

    endpoint: str
    body: Mapping[str, Any] | None
    betas: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EndpointRule:
    kinds: frozenset[str]

    def matches(self, r: Request) -> bool:
        return r.endpoint in self.kinds

    def applies_to(self, endpoint: str) -> bool:
        return endpoint in self.kinds


@dataclass(frozen=True, slots=True)
class ToolType:
    """A `tools[].type` starting with one of `prefixes` (server tools are versioned by suffix)."""

    prefixes: tuple[str, ...]
    endpoints: frozenset[str]

    def applies_to(self, endpoint: str) -> bool:
        return endpoint in self.endpoints

    def matches(self, r: Request) -> bool:
        if r.endpoint not in self.endpoints or r.body is None:
            return False
        tools = r.body.get("tools")
        if not isinstance(tools, list):
            return False
        for tool in tools:
            kind = tool.get("type") if isinstance(tool, dict) else None
            if isinstance(kind, str) and kind.startswith(self.prefixes):
                return True
        return False


@dataclass(frozen=True, slots=True)
class BodyKey:
    """A top-level body key present with a value other than null/false/empty."""

    key: str
    endpoints: frozenset[str]

    def applies_to(self, endpoint: str) -> bool:
        return endpoint in self.endpoints

    def matches(self, r: Request) -> bool:
        if r.endpoint not in self.endpoints or r.body is None or self.key not in r.body:
            return False
        return r.body[self.key] not in (None, False, "", [], {})


@dataclass(frozen=True, slots=True)
class BodyValueNot:
    """A top-level body key whose value is not `value` (absent counts as `default`)."""

    key: str
    value: Any
    default: Any
    endpoints: frozenset[str]

    def applies_to(self, endpoint: str) -> bool:
        return endpoint in self.endpoints

    def matches(self, r: Request) -> bool:
        if r.endpoint not in self.endpoints or r.body is None:
            return False
        return r.body.get(self.key, self.default) is not self.value


@dataclass(frozen=True, slots=True)
class Catalogued:
    """Matched by `judge()` from the catalogue (gateway/policy/catalogue.py) and the tool
    loop, not by a table scan: beta values, tool types, strict tools, output formats."""

    def applies_to(self, endpoint: str) -> bool:
        return False

    def matches(self, r: Request) -> bool:
        return False


CATALOGUED = Catalogued()

Matcher = EndpointRule | ToolType | BodyKey | BodyValueNot | Catalogued


@dataclass(frozen=True, slots=True)
class PolicyRule:
    id: str
    provider: Literal["anthropic", "openai", "any"]
    match: Matcher
    # Why the provider would retain the data, completed into the refusal message.
    why: str
    # What the developer can do instead.
    instead: str
    doc_url: str
    doc_title: str
    action: Literal["refuse", "rewrite"] = "refuse"
    # For action="rewrite": the top-level body key and the value it is forced to.
    rewrite: tuple[str, Any] | None = None

    @property
    def message(self) -> str:
        return (
            f"refused by the ZDR policy: {self.why}. {self.instead} "
            f"(rule {self.id}; see {self.doc_url})"
        )


def _a(id: str, match: Matcher, why: str, instead: str) -> PolicyRule:
    return PolicyRule(id, "anthropic", match, why, instead, ANTHROPIC_DOC, ANTHROPIC_TITLE)


def _o(id: str, match: Matcher, why: str, instead: str) -> PolicyRule:
    return PolicyRule(id, "openai", match, why, instead, OPENAI_DOC, OPENAI_TITLE)


_AM = ANTHROPIC_MODEL_ENDPOINTS
_OM = OPENAI_MODEL_ENDPOINTS
_ALL_OPENAI = frozenset({*_OM, "completions", "embeddings"})

RULES: tuple[PolicyRule, ...] = (
    # --- Anthropic endpoints -------------------------------------------------------
    _a(
        "anthropic.batches",
        EndpointRule(frozenset({"batches"})),
        "Message Batches are kept 29 days by the provider, so they are not ZDR-eligible",
        "Send each request to /v1/messages instead.",
    ),
    _a(
        "anthropic.files",
        EndpointRule(frozenset({"files"})),
        "the Files API keeps uploaded files at the provider until they are deleted",
        "Send documents inline (base64 or text content blocks) in /v1/messages.",
    ),
    _a(
        "anthropic.skills",
        EndpointRule(frozenset({"skills"})),
        "Agent Skills are stored at the provider and run in containers kept up to 30 days",
        "Put the instructions in the system prompt instead.",
    ),
    _a(
        "anthropic.agents",
        EndpointRule(frozenset({"agents"})),
        "managed agents (agents, sessions, environments, vaults, memory stores) keep state "
        "at the provider and are not documented as ZDR-eligible",
        "Run the agent loop in your application against /v1/messages.",
    ),
    # --- Anthropic features inside /v1/messages --------------------------------------
    _a(
        "anthropic.code_execution",
        CATALOGUED,  # tools[].type code_execution_* (any version)
        "the code execution tool keeps container data at the provider for up to 30 days",
        "Remove the code_execution tool, or run code client-side with a custom tool.",
    ),
    _a(
        "anthropic.programmatic_tool_calling",
        CATALOGUED,  # tools[].allowed_callers naming anything but "direct"
        "programmatic tool calling runs tools from code execution, which keeps container "
        "data at the provider",
        "Remove allowed_callers from the tools and let the model call them directly.",
    ),
    # --- Qualified: eligible with a retained artifact; the operator turns each on or off
    # under policy.qualified (defaults in gateway/policy/settings.py).
    _a(
        "anthropic.web_dynamic_filtering",
        CATALOGUED,  # tools[].type web_search_20260209 / web_fetch_20260209
        "web search/fetch with dynamic filtering (_20260209 versions) runs code execution, "
        "which keeps container data at the provider",
        "Use web_search_20250305 / web_fetch_20250910 instead, or ask the gateway operator "
        "to set policy.qualified.anthropic.web_dynamic_filtering: allow.",
    ),
    _a(
        "anthropic.structured_outputs",
        CATALOGUED,  # output_format, output_config.format, tools[].strict, the beta
        "structured outputs and strict tools have their JSON schema cached at the provider "
        "for up to 24 hours",
        "Remove output_format / output_config.format and tools[].strict, or ask the gateway "
        "operator to set policy.qualified.anthropic.structured_outputs: allow.",
    ),
    _a(
        "anthropic.mcp_servers",
        BodyKey("mcp_servers", _AM),
        "the MCP connector (mcp_servers) is not ZDR-eligible",
        "Call MCP servers from your application and pass results as tool results.",
    ),
    _a(
        "anthropic.container",
        BodyKey("container", _AM),
        "a container (skills, or reuse of a code execution container) keeps data at the "
        "provider for up to 30 days",
        "Remove the container parameter.",
    ),
    # --- Anthropic beta headers that switch those features on ------------------------
    _a(
        "anthropic.beta.files_api",
        CATALOGUED,
        "the files-api beta enables the Files API, which keeps files until deleted",
        "Remove files-api from the anthropic-beta header and send content inline.",
    ),
    _a(
        "anthropic.beta.code_execution",
        CATALOGUED,
        "the code-execution beta enables the code execution tool (container data kept 30 days)",
        "Remove code-execution from the anthropic-beta header.",
    ),
    _a(
        "anthropic.beta.mcp_client",
        CATALOGUED,
        "the mcp-client beta enables the MCP connector, which is not ZDR-eligible",
        "Remove mcp-client from the anthropic-beta header.",
    ),
    _a(
        "anthropic.beta.skills",
        CATALOGUED,
        "the skills beta enables Agent Skills, which are stored at the provider",
        "Remove skills from the anthropic-beta header.",
    ),
    # --- OpenAI (applies once an OpenAI upstream is configured) ----------------------
    _o(
        "openai.endpoint",
        EndpointRule(
            frozenset(
                {
                    "files",
                    "batches",
                    "assistants",
                    "threads",
                    "vector_stores",
                    "conversations",
                    "fine_tuning",
                    "evals",
                    "videos",
                    "containers",
                    "uploads",
                }
            )
        ),
        "this endpoint stores data at the provider, so it is not ZDR-eligible",
        "Use /v1/chat/completions or /v1/responses with store=false.",
    ),
    PolicyRule(
        "openai.store",
        "openai",
        BodyValueNot("store", False, None, frozenset({"responses"})),
        "the Responses API stores responses by default",
        "The gateway sends store=false.",
        OPENAI_DOC,
        OPENAI_TITLE,
        action="rewrite",
        rewrite=("store", False),
    ),
    PolicyRule(
        "openai.chat_store",
        "openai",
        # Absent counts as not false: store=false is always sent explicitly, so retention
        # never rests on the provider's default or an organisation-level logging setting.
        BodyValueNot("store", False, None, frozenset({"chat_completions"})),
        "chat completions must not rely on the provider's store default",
        "The gateway sends store=false.",
        OPENAI_DOC,
        OPENAI_TITLE,
        action="rewrite",
        rewrite=("store", False),
    ),
    _o(
        "openai.previous_response_id",
        BodyKey("previous_response_id", _OM),
        "previous_response_id needs the provider to keep earlier responses",
        "Send the whole conversation in input instead.",
    ),
    _o(
        "openai.conversation",
        BodyKey("conversation", _OM),
        "conversations are stored at the provider",
        "Send the whole conversation in input.",
    ),
    _o(
        "openai.background",
        BodyKey("background", _OM),
        "background mode keeps the response at the provider until it is fetched",
        "Use stream=true for long generations.",
    ),
    _o(
        "openai.hosted_tools",
        ToolType(("code_interpreter", "file_search"), _ALL_OPENAI),
        "hosted code interpreter and file search keep data in provider containers/vector stores",
        "Use function tools run by your application.",
    ),
    _o(
        "openai.extended_prompt_cache",
        BodyValueNot("prompt_cache_retention", None, None, _OM),
        "extended prompt cache retention keeps prompt state at the provider for up to 24 hours",
        "Remove prompt_cache_retention.",
    ),
)

# Refuses an unlisted anthropic-beta value (see PolicySettings.betas); not a table row
# because what it matches is configuration, not a documented feature.
UNLISTED_BETA = PolicyRule(
    "anthropic.beta.unlisted",
    "anthropic",
    CATALOGUED,
    "an anthropic-beta value is not in the gateway's catalogue and this gateway refuses "
    "unlisted betas (policy.betas.unlisted: refuse)",
    "Remove it, or ask the gateway operator to add it to policy.betas.allow once it is "
    "known to be ZDR-eligible.",
    "https://platform.claude.com/docs/en/api/beta-headers",
    "Anthropic: Beta headers",
)
# The same for a typed tool (tools[].type) that the catalogue does not list.
UNLISTED_TOOL = PolicyRule(
    "anthropic.tool.unlisted",
    "anthropic",
    CATALOGUED,
    "a tools[].type is not in the gateway's catalogue and this gateway refuses unlisted "
    "tool types (policy.tools.unlisted: refuse)",
    "Use a custom tool (no type), or ask the gateway operator to add the type to "
    "policy.tools.allow once it is known to be ZDR-eligible.",
    ANTHROPIC_DOC,
    ANTHROPIC_TITLE,
)
# A route the router marks as not ZDR-eligible that no table rule names: refused anyway.
NOT_ELIGIBLE = PolicyRule(
    "endpoint.not_eligible",
    "any",
    EndpointRule(frozenset()),
    "this endpoint is not on the gateway's list of ZDR-eligible endpoints",
    "Use /v1/messages.",
    ANTHROPIC_DOC,
    ANTHROPIC_TITLE,
)

BY_ID: dict[str, PolicyRule] = {
    r.id: r for r in (*RULES, UNLISTED_BETA, UNLISTED_TOOL, NOT_ELIGIBLE)
}
