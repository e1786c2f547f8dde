"""The operator-facing reference stays true: docs/metrics.md's metrics table is exactly
gateway/observe/metrics.py and its alerts table exactly the rules file; deploy/README.md
explains every Secret the manifests need."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.deploy_support import ROOT, Rendered, alert_rules, find, metrics_table

METRICS_DOC = ROOT / "docs" / "metrics.md"
DEPLOY_README = ROOT / "deploy" / "README.md"


def metrics_doc() -> str:
    return METRICS_DOC.read_text(encoding="utf-8")


def deploy_readme() -> str:
    return DEPLOY_README.read_text(encoding="utf-8")


def test_metrics_table_is_generated_from_metrics_py() -> None:
    text = metrics_doc()
    match = re.search(
        r"<!-- metrics-table:start -->\n(.*?)\n<!-- metrics-table:end -->", text, re.S
    )
    assert match, "docs/metrics.md lacks the metrics-table markers"
    expected = "\n".join(metrics_table())
    assert match.group(1) == expected, (
        "docs/metrics.md's metrics table is out of date; "
        "replace the block between the markers with:\n" + expected
    )


def test_alerts_table_lists_exactly_the_alert_rules() -> None:
    section = metrics_doc().split("## Alerts", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(ZdrGateway\w+)` \|", section, re.M))
    assert listed == {r["alert"] for r in alert_rules()}


def secret_refs(docs: list[dict[str, Any]]) -> set[tuple[str, str | None]]:
    """(secret name, key) for every Secret a Deployment reads (key None for mounts)."""
    refs: set[tuple[str, str | None]] = set()
    for deployment in find(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for c in pod["containers"]:
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                refs.add((volume["secret"]["secretName"], None))
    return refs


def test_every_secret_the_pods_read_is_documented(rendered: Rendered, overlay: str) -> None:
    text = deploy_readme()
    for name, key in secret_refs(rendered[overlay]):
        assert name in text, f"deploy/README.md does not explain the Secret {name}"
        if key is not None:
            assert re.search(rf"create secret generic {name} .*\n?.*{key}=", text), (name, key)
