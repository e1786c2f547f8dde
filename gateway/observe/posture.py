"""`/zdr/posture`: the effective privacy posture, for an auditor.

What is logged (field names of log lines, audit events and metric labels),
the ZDR rules in force (with per-team exemptions and the documentation each
rests on), the audit trail's settings, the hardening the kernel reports, and a
hash of the effective config — so replicas can be compared with each other and
over time. Built from code tables and config; never from requests. Secrets
appear only as "set"/"not set".
"""

from __future__ import annotations

from typing import Any

from gateway import __version__
from gateway.audit.chain import GENESIS
from gateway.audit.event import CHAIN_FIELDS
from gateway.audit.event import FIELDS as AUDIT_FIELDS
from gateway.config import Config
from gateway.observe import logs
from gateway.observe.metrics import Metrics
from gateway.policy.rules import BY_ID
from gateway.serve import harden


def metric_labels(metrics: Metrics) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for value in vars(metrics).values():
        name = getattr(value, "_name", None)
        labels = getattr(value, "_labelnames", None)
        if isinstance(name, str) and labels is not None:
            out[name] = list(labels)
    return dict(sorted(out.items()))


def policy(config: Config) -> dict[str, Any]:
    providers = {u.provider for u in config.upstreams}
    exempt: dict[str, list[str]] = {}
    for team, team_policy in config.policy.teams.items():
        for rule_id in team_policy.allow:
            exempt.setdefault(rule_id, []).append(team)
    rules = [
        {
            "id": r.id,
            "provider": r.provider,
            "action": r.action,
            "applies": r.provider == "any" or r.provider in providers,
            "exempt_teams": sorted(exempt.get(r.id, [])),
            "reason": r.why,
            "doc_url": r.doc_url,
            "doc_title": r.doc_title,
        }
        for r in BY_ID.values()
    ]
    return {
        "rules": rules,
        "anthropic_betas": {
            "allow": list(config.policy.betas.allow),
            "unlisted": config.policy.betas.unlisted,
        },
    }


def build(config: Config, metrics: Metrics) -> dict[str, Any]:
    audit = config.audit
    return {
        "version": __version__,
        "config_hash": config.digest(),
        "upstreams": [{"name": u.name, "provider": u.provider} for u in config.upstreams],
        "logged_fields": {
            "log_lines": sorted(logs.FIELDS),
            "audit_events": [*AUDIT_FIELDS, *(CHAIN_FIELDS if audit.chain else ())],
            "metric_labels": metric_labels(metrics),
            "log_level": config.logging.level,
        },
        "policy": policy(config),
        "audit": {
            "sink": audit.sink,
            # The only file the gateway process opens for writing, if any.
            "file": audit.path if audit.sink == "file" else None,
            "hash_chain": audit.chain,
            "chain_keyed": audit.chain_key is not None,
            "chain_genesis": GENESIS if audit.chain else None,
            "client_ip": audit.client_ip,
        },
        "hardening": {
            **harden.status(),
            "lock_memory_configured": config.harden.lock_memory,
            "require_read_only_root": config.harden.require_read_only_root,
        },
    }
