"""The alert rules pass the real promtool (check + unit tests), the PrometheusRule carries
exactly the same groups, and every metric an alert reads is one the gateway exports."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import yaml

from tests.deploy.deploy_support import (
    METRIC_NAME,
    PROMETHEUS_RULE,
    RULE_TESTS,
    RULES,
    Rendered,
    alert_rules,
    exposed_metric_names,
    rule_groups,
    run,
    tool,
)

# What the issue asks the rules to watch, by alert name.
REQUIRED_ALERTS = {
    "ZdrGatewayHighErrorRate",
    "ZdrGatewayUpstreamErrors",
    "ZdrGatewayHighLatencyP99",
    "ZdrGatewayHighTimeToFirstByteP99",
    "ZdrGatewayRateLimitRefusalsSpike",
    "ZdrGatewayAuthFailureSpike",
    "ZdrGatewayRedisDown",
    "ZdrGatewayPolicyRefusalsSpike",
    "ZdrGatewayConfigDrift",
}


def promtool(*args: str) -> str:
    proc = run(tool("promtool"), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_promtool_checks_the_rules_file() -> None:
    out = promtool("check", "rules", str(RULES))
    assert f"SUCCESS: {len(alert_rules())} rules found" in out


def test_promtool_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", str(RULE_TESTS))


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The check is real: a syntax error in an expression fails it."""
    bad = tmp_path / "bad.rules.yaml"
    bad.write_text(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(x[5m])) >\n",
        encoding="utf-8",
    )
    proc = run(tool("promtool"), "check", "rules", str(bad))
    assert proc.returncode != 0


def test_unit_tests_fire_every_alert() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {
        t["alertname"]
        for case in cases
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    assert fired == {r["alert"] for r in alert_rules()}


def test_required_alerts_exist_and_are_annotated() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description"} <= rule["annotations"].keys(), rule["alert"]


def test_alerts_read_only_metrics_the_gateway_exports() -> None:
    known = exposed_metric_names()
    for rule in alert_rules():
        for name in METRIC_NAME.findall(rule["expr"]):
            assert name in known, f"{rule['alert']} reads {name}, not in gateway/observe/metrics.py"


def _sync_module() -> ModuleType:
    path = PROMETHEUS_RULE.parent / "sync_prometheusrule.py"
    spec = importlib.util.spec_from_file_location("sync_prometheusrule", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prometheus_rule_is_in_sync_with_the_rules_file(tmp_path: Path) -> None:
    expected = _sync_module().render(RULES.read_text(encoding="utf-8"))
    actual = PROMETHEUS_RULE.read_text(encoding="utf-8")
    assert actual == expected, "run: python deploy/prometheus/sync_prometheusrule.py"
    spec = yaml.safe_load(actual)["spec"]
    assert spec["groups"] == rule_groups()
    # And the operator's copy passes promtool on its own.
    extracted = tmp_path / "from-prometheusrule.yaml"
    extracted.write_text(yaml.safe_dump(spec), encoding="utf-8")
    promtool("check", "rules", str(extracted))


def test_prometheus_rule_ships_with_the_manifests(rendered: Rendered, overlay: str) -> None:
    (rule,) = (d for d in rendered[overlay] if d["kind"] == "PrometheusRule")
    assert rule["spec"]["groups"] == rule_groups()
