"""Every overlay renders with the real `kubectl kustomize` and every object passes an
offline schema validation (kubernetes-validate for built-in kinds, crd_schemas for the
cert-manager and Prometheus Operator kinds), in strict mode: unknown fields fail."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.crd_schemas import SCHEMAS
from tests.deploy.deploy_support import Rendered, find, one, run, tool

# The oldest Kubernetes these manifests need (preStop `sleep`, matchLabelKeys) and the
# newest the validator knows.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())

COMMON_KINDS = {
    "Namespace",
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "Certificate",
    "PrometheusRule",
    "ServiceMonitor",
    "NetworkPolicy",
}


def validate(doc: dict[str, Any]) -> None:
    schema = SCHEMAS.get((doc["apiVersion"], doc["kind"]))
    if schema is not None:
        jsonschema.validate(doc, schema)
        return
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def test_kubectl_has_kustomize_v5() -> None:
    proc = run(tool("kubectl"), "version", "--client")
    assert proc.returncode == 0, proc.stderr
    assert "Kustomize Version: v5" in proc.stdout, proc.stdout


def test_overlay_renders_and_validates(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    assert docs, f"{overlay} rendered nothing"
    for doc in docs:
        try:
            validate(doc)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}")


def test_every_object_lands_in_the_gateway_namespace(rendered: Rendered, overlay: str) -> None:
    for doc in rendered[overlay]:
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == "zdr-gateway"
        else:
            assert doc["metadata"].get("namespace") == "zdr-gateway", doc["metadata"]["name"]


def test_single_is_one_replica_without_autoscaler(rendered: Rendered) -> None:
    docs = rendered["single"]
    assert {d["kind"] for d in docs} == COMMON_KINDS
    assert one(docs, "Deployment", "zdr-gateway")["spec"]["replicas"] == 1
    assert not find(docs, "HorizontalPodAutoscaler")


def test_ha_autoscales_from_three_with_redis(rendered: Rendered) -> None:
    docs = rendered["ha"]
    assert {d["kind"] for d in docs} == COMMON_KINDS | {"HorizontalPodAutoscaler"}
    hpa = one(docs, "HorizontalPodAutoscaler", "zdr-gateway")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "zdr-gateway",
    }
    assert hpa["spec"]["minReplicas"] >= 3
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    # The HPA owns the replica count; a `replicas` field would fight it on every apply.
    assert "replicas" not in one(docs, "Deployment", "zdr-gateway")["spec"]
    one(docs, "Deployment", "zdr-gateway-redis")
    one(docs, "Service", "zdr-gateway-redis")


def test_config_map_is_generated_immutable_and_mounted(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    (cm,) = (d for d in find(docs, "ConfigMap") if d["metadata"]["name"].startswith("zdr-"))
    # The hash suffix makes every config change roll the pods.
    assert cm["metadata"]["name"].startswith("zdr-gateway-config-")
    assert cm["immutable"] is True
    pod = one(docs, "Deployment", "zdr-gateway")["spec"]["template"]["spec"]
    names = [v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v]
    assert names == [cm["metadata"]["name"]]


def test_service_monitor_scrapes_the_admin_port(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    monitor = one(docs, "ServiceMonitor", "zdr-gateway")
    service = one(docs, "Service", "zdr-gateway")
    labels = service["metadata"]["labels"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    (port,) = (p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    assert port["port"] == 9464


def test_services_select_their_pods(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    for service in find(docs, "Service"):
        selector = service["spec"]["selector"]
        pods = [
            d
            for d in find(docs, "Deployment")
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(pods) == 1, f"Service {service['metadata']['name']} selects {len(pods)}"
        container_ports = {p["name"] for c in pods[0]["spec"]["template"]["spec"]["containers"]
                           for p in c["ports"]}  # fmt: skip
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports


def test_strict_validation_rejects_a_misspelt_field(rendered: Rendered) -> None:
    """The validator is really on: a typo in a Deployment and in a CRD both fail."""
    deployment = copy.deepcopy(one(rendered["single"], "Deployment", "zdr-gateway"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    cert = copy.deepcopy(one(rendered["single"], "Certificate", "zdr-gateway"))
    cert["spec"]["dnsName"] = ["x"]
    with pytest.raises(jsonschema.ValidationError):
        validate(cert)
