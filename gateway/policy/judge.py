"""`judge()`: the ZDR policy applied to one request, as a pure function.

Input: the route's bounded endpoint kind, the provider, the `anthropic-beta`
header, the parsed JSON body, the caller's team and the `policy:` settings.
Output: a `Verdict` — refuse with a rule, or go ahead (possibly with a
rewritten body) — and the decision names for the audit trail:

- `refuse:<rule>`   the request was refused by that rule;
- `override:<rule>` the rule matched but the team is exempt (policy.teams);
- `rewrite:<rule>`  the body was rewritten (e.g. OpenAI store=false).

Every rule is evaluated, so all overrides are recorded even when a later rule
refuses. No aiohttp here: tests drive it with plain values.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.policy.rules import (
    NOT_ELIGIBLE,
    RULES,
    UNLISTED_BETA,
    Beta,
    EndpointRule,
    PolicyRule,
    Request,
)
from gateway.policy.settings import PolicySettings

# The only request header the policy reads.
BETA_HEADER = "anthropic-beta"
# Beta patterns that a named table rule refuses.
_RETENTION_BETAS = tuple(
    p
    for r in RULES
    if isinstance(r.match, Beta) and r.provider == "anthropic"
    for p in r.match.patterns
)


@dataclass(frozen=True, slots=True)
class Verdict:
    refused: PolicyRule | None = None
    decisions: tuple[str, ...] = ()
    # The rewritten body, when a rewrite rule applied (the input is never mutated).
    body: dict[str, Any] | None = None
    rewrites: tuple[PolicyRule, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return self.refused is None


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
    exempt = settings.exempt(team)
    decisions: list[str] = []
    refused: PolicyRule | None = None
    rewrites: list[PolicyRule] = []
    matched = _matched(provider, request, settings)
    for rule in matched:
        if rule.id in exempt:
            decisions.append(f"override:{rule.id}")
            continue
        if rule.action == "rewrite":
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
        return Verdict(refused=refused, decisions=tuple(decisions))

    new_body: dict[str, Any] | None = None
    if rewrites and body is not None:
        new_body = copy.copy(dict(body))  # shallow: only top-level keys are rewritten
        for rule in rewrites:
            assert rule.rewrite is not None
            key, value = rule.rewrite
            new_body[key] = value
            decisions.append(f"rewrite:{rule.id}")
    return Verdict(decisions=tuple(decisions), body=new_body, rewrites=tuple(rewrites))


@functools.cache
def _candidates(provider: str, endpoint: str) -> tuple[PolicyRule, ...]:
    """The rules that can match a request to this provider and endpoint kind: decided once
    per pair (both bounded: the providers' route tables), not per request."""
    return tuple(r for r in RULES if r.provider == provider and r.match.applies_to(endpoint))


def _matched(provider: str, request: Request, settings: PolicySettings) -> list[PolicyRule]:
    rules = [r for r in _candidates(provider, request.endpoint) if r.match.matches(request)]
    if provider == "anthropic" and _unlisted_betas(request.betas, settings):
        rules.append(UNLISTED_BETA)
    return rules


def _unlisted_betas(betas: tuple[str, ...], settings: PolicySettings) -> bool:
    if settings.betas.unlisted == "allow":
        return False
    for beta in betas:
        if any(fnmatch.fnmatchcase(beta, p) for p in _RETENTION_BETAS):
            continue  # refused (or overridden) by its own named rule
        if not any(fnmatch.fnmatchcase(beta, p) for p in settings.betas.allow):
            return True
    return False
