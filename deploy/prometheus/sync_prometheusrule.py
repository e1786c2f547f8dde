"""Writes prometheusrule.yaml from zdr-gateway.rules.yaml (run after editing the rules).

The plain rules file is the source: promtool checks and unit-tests it directly. The
PrometheusRule carries the same groups, indented under `spec:`, comments and all.
Usage: python deploy/prometheus/sync_prometheusrule.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "zdr-gateway.rules.yaml"
TARGET = HERE / "prometheusrule.yaml"

HEADER = """\
# GENERATED from zdr-gateway.rules.yaml by sync_prometheusrule.py: edit that file instead.
# The zdr-gateway alert rules for the Prometheus Operator. Your Prometheus may select
# rules by a label (kube-prometheus-stack: `release: <helm release>`); add it if so.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: zdr-gateway
  labels:
    app.kubernetes.io/name: zdr-gateway
spec:
"""


def render(source: str) -> str:
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = ["  " + line if line else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(SOURCE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {TARGET}")
