"""`judge()`: the ZDR policy applied to one request, as a pure function.

Input: the route's bounded endpoint kind, the provider, the `anthropic-beta`
header, the parsed JSON body, the caller's team and the `policy:` settings.
Output: a `Verdict` — refuse with a rule, or go ahead (possibly with a
rewritten body) — and the decision names for the audit trail:

- `refuse:<rule>`    the request was refused by that rule;
- `override:<rule>`  the rule matched but the team is exempt (policy.teams);
- `qualified:<rule>` a qualified feature the operator allows was used;
- `rewrite:<rule>`   the body was rewritten (e.g. OpenAI store=false);
- `unlisted:beta` / `unlisted:tool` a value the catalogue does not list passed
  (the value itself is never recorded).

Endpoint and body rules come from the table (gateway/policy/rules.py); beta
values and tool types from the catalogue (gateway/policy/catalogue.py). Every
rule is evaluated, so all overrides are recorded even when a later rule
refuses. No aiohttp here: tests drive it with plain values.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.policy import catalogue
from gateway.policy.rules import (
    ANTHROPIC_MODEL_ENDPOINTS,
    BY_ID,
    NOT_ELIGIBLE,
    RULES,
    UNLISTED_BETA,
    UNLISTED_TOOL,
    EndpointRule,
    PolicyRule,
    Request,
)
from gateway.policy.settings import PolicySettings

# The only request header the policy reads.
BETA_HEADER = "anthropic-beta"
STRUCTURED = BY_ID["anthropic.structured_outputs"]
PROGRAMMATIC = BY_ID["anthropic.programmatic_tool_calling"]


@dataclass(frozen=True, slots=True)
class Verdict:
    refused: PolicyRule | None = None
    decisions: tuple[str, ...] = ()
    # The rewritten body, when a rewrite rule applied (the input is never mutated).
    body: dict[str, Any] | None = None
    rewrites: tuple[PolicyRule, ...] = field(default=())
    # Kinds of unlisted values seen ("beta", "tool"), for the bounded metric.
    unlisted: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.refused is None


_PASS = Verdict()


def parse_betas(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(b.strip() for b in value.split(",") if b.strip())


def judge(
    endpoint: str,
    provider: str,
    headers: Mapping[str, str],
    body: Mapping[str, Any] | None,
    team: str | None,
    settings: PolicySettings,
    *,
    zdr_eligible: bool = True,
) -> Verdict:
    request = Request(endpoint, body, parse_betas(headers.get(BETA_HEADER)))
    matched = [r for r in _candidates(provider, endpoint) if r.match.matches(request)]
    unlisted: list[str] = []
    if provider == "anthropic":
        _catalogued(request, settings, matched, unlisted)
    if not matched and not unlisted and zdr_eligible:
        return _PASS  # the common case: nothing to record
    exempt = settings.exempt(team)
    qualified = settings.allowed_qualified
    decisions: list[str] = [f"unlisted:{kind}" for kind in unlisted]
    refused: PolicyRule | None = None
    rewrites: list[PolicyRule] = []
    seen: set[str] = set()
    for rule in matched:
        if rule.id in seen:
            continue
        seen.add(rule.id)
        if rule.id in qualified:
            decisions.append(f"qualified:{rule.id}")
        elif rule.id in exempt:
            decisions.append(f"override:{rule.id}")
        elif rule.action == "rewrite":
            rewrites.append(rule)
        elif refused is None:
            refused = rule

    named = any(isinstance(r.match, EndpointRule) for r in matched)
    if refused is None and not zdr_eligible and not named:
        # SECURITY: strict default — a route the router calls non-eligible is refused even
        # when no table row names it (new provider endpoints stay closed until reviewed).
        if NOT_ELIGIBLE.id in exempt:
            decisions.append(f"override:{NOT_ELIGIBLE.id}")
        else:
            refused = NOT_ELIGIBLE
    if refused is not None:
        decisions.append(f"refuse:{refused.id}")
        return Verdict(refused=refused, decisions=tuple(decisions), unlisted=tuple(unlisted))

    new_body: dict[str, Any] | None = None
    if rewrites and body is not None:
        new_body = copy.copy(dict(body))  # shallow: only top-level keys are rewritten
        for rule in rewrites:
            assert rule.rewrite is not None
            key, value = rule.rewrite
            new_body[key] = value
            decisions.append(f"rewrite:{rule.id}")
    return Verdict(
        decisions=tuple(decisions),
        body=new_body,
        rewrites=tuple(rewrites),
        unlisted=tuple(unlisted),
    )


@functools.cache
def _candidates(provider: str, endpoint: str) -> tuple[PolicyRule, ...]:
    """The table rules that can match a request to this provider and endpoint kind: decided
    once per pair (both bounded: the providers' route tables), not per request."""
    return tuple(r for r in RULES if r.provider == provider and r.match.applies_to(endpoint))


def _catalogued(
    request: Request, settings: PolicySettings, matched: list[PolicyRule], unlisted: list[str]
) -> None:
    """Anthropic betas and tools against the catalogue; appends the rules they lead to."""
    extra = settings.extra_betas
    for value in request.betas:
        entry = catalogue.beta(value)
        if entry is not None:
            if entry.rule is not None:
                matched.append(BY_ID[entry.rule])
        elif extra is None or extra.match(value) is None:
            if "beta" not in unlisted:
                unlisted.append("beta")
            if settings.betas.unlisted == "refuse":
                matched.append(UNLISTED_BETA)
    body = request.body
    if body is None or request.endpoint not in ANTHROPIC_MODEL_ENDPOINTS:
        return
    if body.get("output_format") or _has(body.get("output_config"), "format"):
        matched.append(STRUCTURED)
    tools = body.get("tools")
    if isinstance(tools, list):
        _tools(tools, settings, matched, unlisted)


def _tools(
    tools: list[Any], settings: PolicySettings, matched: list[PolicyRule], unlisted: list[str]
) -> None:
    extra = settings.extra_tools
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        if tool.get("strict") is True:
            matched.append(STRUCTURED)
        callers = tool.get("allowed_callers")
        if isinstance(callers, list) and any(c != "direct" for c in callers):
            matched.append(PROGRAMMATIC)
        kind = tool.get("type")
        if kind is None:
            continue  # a custom tool (the common case: Claude Code's ~20 tools)
        entry = catalogue.tool(kind) if isinstance(kind, str) else None
        if entry is not None:
            if entry.rule is not None:
                matched.append(BY_ID[entry.rule])
        elif extra is None or not isinstance(kind, str) or extra.match(kind) is None:
            if "tool" not in unlisted:
                unlisted.append("tool")
            if settings.tools.unlisted == "refuse":
                matched.append(UNLISTED_TOOL)


def _has(value: Any, key: str) -> bool:
    return isinstance(value, dict) and value.get(key) not in (None, False, "", [], {})
