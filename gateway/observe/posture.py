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
from gateway.audit.event import CHAIN_FIELDS
from gateway.audit.event import FIELDS as AUDIT_FIELDS
from gateway.audit.hashchain import GENESIS
from gateway.config import Config
from gateway.observe import logs
from gateway.observe.metrics import Metrics
from gateway.policy import catalogue
from gateway.policy.rules import BY_ID
from gateway.routing.upstream import UpstreamPool
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
        "qualified": dict(config.policy.qualified),
        "anthropic_betas": {
            "allow": list(config.policy.betas.allow),
            "unlisted": config.policy.betas.unlisted,
        },
        "anthropic_tools": {
            "allow": list(config.policy.tools.allow),
            "unlisted": config.policy.tools.unlisted,
        },
        # Every documented beta and tool type, its class and source (versioned).
        "catalogue": catalogue.posture(),
    }


def upstreams(config: Config, pool: UpstreamPool | None) -> list[dict[str, Any]]:
    """Each upstream's targets by name, with their labels and breaker state: where
    traffic may go (residency), never a URL or a key."""
    live = {u.name: u.status() for u in pool.upstreams} if pool is not None else {}
    out = []
    for u in config.upstreams:
        status = live.get(u.name, {})
        targets = [
            {
                "name": t.name,
                "priority": t.priority,
                "weight": t.weight,
                "labels": dict(t.labels),
                "breaker": status.get(t.name, {}).get("state", "closed"),
            }
            for t in u.pool()
        ]
        teams = {team: dict(r.labels) for team, r in u.teams.items()}
        out.append({"name": u.name, "provider": u.provider, "targets": targets, "teams": teams})
    return out


def build(config: Config, metrics: Metrics, pool: UpstreamPool | None = None) -> dict[str, Any]:
    audit = config.audit
    return {
        "version": __version__,
        "config_hash": config.digest(),
        "upstreams": upstreams(config, pool),
        "logged_fields": {
            "log_lines": sorted(logs.FIELDS),
            "audit_events": [*AUDIT_FIELDS, *(CHAIN_FIELDS if audit.chain else ())],
            "metric_labels": metric_labels(metrics),
            "log_level": config.logging.level,
        },
        "policy": policy(config),
        "audit": {
            "sink": audit.sink,
            # The only files the gateway process opens for writing, if any: its segments.
            "dir": audit.dir if audit.sink == "file" else None,
            "stream": audit.stream if audit.sink == "file" else None,
            "encryption": "AES-256-GCM" if audit.sink == "file" else None,
            "key_ids": [k.kid for k in audit.keys],  # the first writes; never key material
            "rotate_bytes": audit.rotate_bytes if audit.sink == "file" else None,
            "rotate_seconds": audit.rotate_seconds if audit.sink == "file" else None,
            "retention_days": audit.retention_days,
            "hash_chain": audit.chain,
            "chain_keyed": audit.chain_key is not None,
            "chain_genesis": GENESIS if audit.chain else None,
            "client_ip": audit.client_ip,
            "session_id": audit.session_id,
        },
        "hardening": {
            **harden.status(),
            "lock_memory_configured": config.harden.lock_memory,
            "require_read_only_root": config.harden.require_read_only_root,
        },
    }
