"""The hardening a reviewer for a regulated cluster checks, asserted on the rendered
output of each overlay (so no overlay can quietly undo it)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_support import Rendered, find, gateway_container, one

Mutate = Callable[[dict[str, Any]], None]  # weakens a rendered Deployment in place
READ_ONLY_VOLUME_KINDS = {"configMap", "secret", "projected", "downwardAPI"}


def security_problems(deployment: dict[str, Any]) -> list[str]:
    """Everything in a Deployment that breaks the hardening rules; [] when it is clean."""
    problems: list[str] = []
    pod = deployment["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        problems.append("pod: runAsNonRoot must be true")
    if psc.get("runAsUser", 0) == 0:
        problems.append("pod: runAsUser must be a non-zero uid")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod: seccompProfile must be RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("pod: automountServiceAccountToken must be false")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(f"pod: {flag} must not be set")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= READ_ONLY_VOLUME_KINDS:
            problems.append(f"volume {volume['name']}: writable kind {sorted(kinds)}")
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        where = f"container {c['name']}"
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged must not be set")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{where}: capabilities.drop must be [ALL]")
        if sc.get("capabilities", {}).get("add"):
            problems.append(f"{where}: no capability may be added")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            problems.append(f"{where}: runAsNonRoot must be true")
        if sc.get("runAsUser", psc.get("runAsUser", 0)) == 0:
            problems.append(f"{where}: must not run as uid 0")
        if sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") != "RuntimeDefault":
            problems.append(f"{where}: seccompProfile must be RuntimeDefault")
        for mount in c.get("volumeMounts", []):
            if mount.get("readOnly") is not True:
                problems.append(f"{where}: mount {mount['mountPath']} must be readOnly")
        limits = c.get("resources", {}).get("limits", {})
        requests = c.get("resources", {}).get("requests", {})
        if not {"cpu", "memory"} <= requests.keys() or "memory" not in limits:
            problems.append(f"{where}: cpu/memory requests and a memory limit are required")
    return problems


def test_every_deployment_is_hardened(rendered: Rendered, overlay: str) -> None:
    for deployment in find(rendered[overlay], "Deployment"):
        assert security_problems(deployment) == [], deployment["metadata"]["name"]


def _set(path: str, value: Any) -> Mutate:
    def mutate(d: dict[str, Any]) -> None:
        node = d["spec"]["template"]["spec"]
        *parents, last = path.split(".")
        for key in parents:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        node[int(last) if last.isdigit() else last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set("securityContext.runAsNonRoot", False), "pod: runAsNonRoot"),
        (_set("securityContext.runAsUser", 0), "pod: runAsUser"),
        (_set("securityContext.seccompProfile.type", "Unconfined"), "pod: seccompProfile"),
        (_set("automountServiceAccountToken", True), "automountServiceAccountToken"),
        (_set("hostNetwork", True), "hostNetwork"),
        (_set("containers.0.securityContext.readOnlyRootFilesystem", False), "readOnlyRoot"),
        (
            _set("containers.0.securityContext.allowPrivilegeEscalation", True),
            "PrivilegeEscalation",
        ),
        (_set("containers.0.securityContext.capabilities.drop", ["NET_RAW"]), "drop"),
        (_set("containers.0.securityContext.capabilities.add", ["NET_ADMIN"]), "added"),
        (_set("containers.0.securityContext.privileged", True), "privileged"),
        (_set("containers.0.securityContext.runAsUser", 0), "uid 0"),
        (_set("volumes.0", {"name": "scratch", "emptyDir": {}}), "writable kind"),
        (_set("containers.0.volumeMounts.0.readOnly", False), "must be readOnly"),
        (_set("containers.0.resources", {}), "requests and a memory limit"),
    ],
)
def test_each_weakening_is_caught(rendered: Rendered, mutate: Mutate, expected: str) -> None:
    deployment = copy.deepcopy(one(rendered["single"], "Deployment", "zdr-gateway"))
    mutate(deployment)
    problems = security_problems(deployment)
    assert any(expected in p for p in problems), problems


def test_service_account_mounts_no_token(rendered: Rendered, overlay: str) -> None:
    account = one(rendered[overlay], "ServiceAccount", "zdr-gateway")
    assert account["automountServiceAccountToken"] is False
    pod = one(rendered[overlay], "Deployment", "zdr-gateway")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "zdr-gateway"


def test_namespace_enforces_restricted_pod_security(rendered: Rendered, overlay: str) -> None:
    labels = one(rendered[overlay], "Namespace", "zdr-gateway")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_probes_use_the_admin_port(rendered: Rendered, overlay: str) -> None:
    container = gateway_container(rendered[overlay])
    admin = {p["name"]: p["containerPort"] for p in container["ports"]}["admin"]
    assert admin == 9464
    paths = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] in ("admin", admin), probe
        paths[probe] = get["path"]
    assert paths == {"startupProbe": "/healthz", "livenessProbe": "/healthz",
                     "readinessProbe": "/readyz"}  # fmt: skip


def test_termination_grace_outlasts_prestop_and_drain(rendered: Rendered, overlay: str) -> None:
    docs = rendered[overlay]
    pod = one(docs, "Deployment", "zdr-gateway")["spec"]["template"]["spec"]
    container = gateway_container(docs)
    pre_stop = container["lifecycle"]["preStop"]
    # `sleep` needs no shell or binary in the image.
    assert set(pre_stop) == {"sleep"}
    (cm,) = (d for d in find(docs, "ConfigMap") if "gateway.yaml" in d.get("data", {}))
    drain = yaml.safe_load(cm["data"]["gateway.yaml"])["server"]["shutdown_grace_seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop["sleep"]["seconds"] + drain


def test_pods_spread_over_nodes_and_zones(rendered: Rendered, overlay: str) -> None:
    pod = one(rendered[overlay], "Deployment", "zdr-gateway")["spec"]["template"]["spec"]
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}


def test_disruption_budget_lets_a_drain_proceed(rendered: Rendered, overlay: str) -> None:
    pdb = one(rendered[overlay], "PodDisruptionBudget", "zdr-gateway")
    assert pdb["spec"]["maxUnavailable"] == 1
    labels = one(rendered[overlay], "Deployment", "zdr-gateway")["spec"]["template"]["metadata"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels["labels"].items()
