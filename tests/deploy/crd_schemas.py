"""Offline schemas for the three custom resources the manifests use.

kubernetes-validate knows only built-in kinds. These schemas cover the fields of
cert-manager's Certificate (cert-manager.io/v1) and the Prometheus Operator's
ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1) that a deployment like this
one sets, with their documented types and enums, and reject unknown fields (as the API
server's structural-schema pruning would silently drop them: a typo would be lost).
"""

from __future__ import annotations

from typing import Any

_STR: dict[str, Any] = {"type": "string"}
_STR_MAP: dict[str, Any] = {"type": "object", "additionalProperties": _STR}
_DURATION: dict[str, Any] = {"type": "string", "pattern": r"^(0|(([0-9]+)(ms|s|m|h))+)$"}
_GO_DURATION: dict[str, Any] = {
    "type": "string",
    "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$",
}
_LABEL_SELECTOR: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": _STR_MAP,
        "matchExpressions": {"type": "array", "items": {"type": "object"}},
    },
}


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                    "namespace": _STR,
                    "labels": _STR_MAP,
                    "annotations": _STR_MAP,
                },
            },
            "spec": spec,
        },
    }


_USAGES = [
    "signing", "digital signature", "content commitment", "key encipherment",
    "key agreement", "data encipherment", "cert sign", "crl sign", "encipher only",
    "decipher only", "any", "server auth", "client auth", "code signing", "email protection",
    "s/mime", "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
    "microsoft sgc", "netscape sgc",
]  # fmt: skip

CERTIFICATE = _resource(
    "cert-manager.io/v1",
    "Certificate",
    {
        "type": "object",
        "required": ["secretName", "issuerRef"],
        "additionalProperties": False,
        "properties": {
            "secretName": _STR,
            "secretTemplate": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"labels": _STR_MAP, "annotations": _STR_MAP},
            },
            "commonName": _STR,
            "dnsNames": {"type": "array", "items": _STR},
            "ipAddresses": {"type": "array", "items": _STR},
            "uris": {"type": "array", "items": _STR},
            "duration": _GO_DURATION,
            "renewBefore": _GO_DURATION,
            "isCA": {"type": "boolean"},
            "usages": {"type": "array", "items": {"enum": _USAGES}},
            "revisionHistoryLimit": {"type": "integer", "minimum": 1},
            "privateKey": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                    "encoding": {"enum": ["PKCS1", "PKCS8"]},
                    "rotationPolicy": {"enum": ["Never", "Always"]},
                    "size": {"type": "integer"},
                },
            },
            "issuerRef": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {"name": _STR, "kind": _STR, "group": _STR},
            },
        },
    },
)

_ENDPOINT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": _STR,
        "targetPort": {"type": ["string", "integer"]},
        "path": {"type": "string", "pattern": "^/"},
        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
        "interval": _DURATION,
        "scrapeTimeout": _DURATION,
        "honorLabels": {"type": "boolean"},
        "honorTimestamps": {"type": "boolean"},
        "relabelings": {"type": "array", "items": {"type": "object"}},
        "metricRelabelings": {"type": "array", "items": {"type": "object"}},
        "tlsConfig": {"type": "object"},
    },
}

SERVICE_MONITOR = _resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    {
        "type": "object",
        "required": ["selector", "endpoints"],
        "additionalProperties": False,
        "properties": {
            "selector": _LABEL_SELECTOR,
            "namespaceSelector": {"type": "object"},
            "jobLabel": _STR,
            "targetLabels": {"type": "array", "items": _STR},
            "podTargetLabels": {"type": "array", "items": _STR},
            "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
        },
    },
)

_RULE: dict[str, Any] = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    "properties": {
        "alert": _STR,
        "record": _STR,
        "expr": {"type": ["string", "integer"]},
        "for": _DURATION,
        "keep_firing_for": _DURATION,
        "labels": _STR_MAP,
        "annotations": _STR_MAP,
    },
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
}

PROMETHEUS_RULE = _resource(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "rules"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "interval": _DURATION,
                        "limit": {"type": "integer"},
                        "partial_response_strategy": _STR,
                        "rules": {"type": "array", "items": _RULE},
                    },
                },
            }
        },
    },
)

SCHEMAS = {
    ("cert-manager.io/v1", "Certificate"): CERTIFICATE,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
}
