"""Turns the pydantic models into the CustomResourceDefinition (structural OpenAPI v3 schema).

Pydantic emits JSON Schema 2020-12 with `$ref`s and `anyOf [X, null]` for optional fields; a
structural schema must be self-contained, typed at every level and free of `anyOf` over types,
so references are inlined and optional fields become plain (non-required) properties.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from modelplex.crds import labels
from modelplex.crds.base import cel
from modelplex.crds.spec import ModelDeploymentSpec
from modelplex.crds.status import ModelDeploymentStatus

_KEPT = (
    "type",
    "description",
    "default",
    "enum",
    "format",
    "minimum",
    "maximum",
    "exclusiveMaximum",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
)
NAME_RULE = cel(
    "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && self.metadata.name.size() <= 50",
    "metadata.name must be a DNS-1035 label of at most 50 characters (it names the Service and the pods)",
)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline `$ref`/`allOf` and collapse `anyOf [X, null]`; siblings override the target's keys."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        return {**_resolve(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
    if "allOf" in node and len(node["allOf"]) == 1:
        return {**_resolve(node["allOf"][0], defs), **{k: v for k, v in node.items() if k != "allOf"}}
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {node}")
        return {**_resolve(options[0], defs), **{k: v for k, v in node.items() if k != "anyOf"}}
    return node


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(node, defs)
    out: dict[str, Any] = {key: node[key] for key in _KEPT if key in node}
    out.update({key: value for key, value in node.items() if key.startswith("x-kubernetes-")})
    if "exclusiveMinimum" in node:  # JSON Schema 2020 number -> OpenAPI v3 boolean form
        out["minimum"], out["exclusiveMinimum"] = node["exclusiveMinimum"], True
    if out.get("default", 0) is None:
        del out["default"]
    if "properties" in node:
        out["properties"] = {name: structural(child, defs) for name, child in node["properties"].items()}
    if "items" in node:
        out["items"] = structural(node["items"], defs)
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = structural(node["additionalProperties"], defs)
    if "type" not in out:
        raise ValueError(f"untyped schema node: {node}")
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return structural(raw, raw.get("$defs", {}))


def _printer_columns() -> list[dict[str, Any]]:
    return [
        {"name": "Model", "type": "string", "jsonPath": ".status.servedName", "description": "Model id"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "description": "Desired"},
        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas", "description": "Ready"},
        {
            "name": "Autoscaled",
            "type": "integer",
            "jsonPath": ".status.scaling.desiredReplicas",
            "description": "Replicas the autoscaler asks for",
        },
        {
            "name": "GPUs",
            "type": "integer",
            "jsonPath": ".status.gpusPerReplica",
            "description": "Per replica",
        },
        {
            "name": "Status",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
            "description": "Reason of the Ready condition",
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def openapi_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A model served by vLLM replicas on GPU nodes, metered by the Modelplex gateway.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "Versioned schema of this object."},
            "kind": {"type": "string", "description": "REST resource this object represents."},
            "metadata": {"type": "object"},
            "spec": model_schema(ModelDeploymentSpec),
            "status": model_schema(ModelDeploymentStatus),
        },
        "x-kubernetes-validations": [NAME_RULE],
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition of ModelDeployment."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": labels.CRD_NAME},
        "spec": {
            "group": labels.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": labels.KIND,
                "plural": labels.PLURAL,
                "singular": labels.SINGULAR,
                "shortNames": [labels.SHORT_NAME],
                "listKind": f"{labels.KIND}List",
                "categories": ["modelplex"],
            },
            "versions": [
                {
                    "name": labels.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": _printer_columns(),
                }
            ],
        },
    }
