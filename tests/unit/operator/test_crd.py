"""The CRD YAML is generated from the pydantic models, structural, and fully documented."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelplex.crds.generate import CRD_PATH, render
from modelplex.crds.resource import ModelDeployment
from modelplex.crds.schema import openapi_schema
from modelplex.crds.spec import ModelDeploymentSpec


def test_checked_in_crd_is_current() -> None:
    assert CRD_PATH.read_text() == render(), "run: python -m modelplex.crds.generate"


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, child in (node.get("properties") or {}).items():
        found += _walk(child, f"{path}.{name}")
    if "items" in node:
        found += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


def test_schema_is_structural_and_documented() -> None:
    schema = openapi_schema()
    for path, node in _walk(schema["properties"]["spec"], ".spec") + _walk(
        schema["properties"]["status"], ".status"
    ):
        assert "type" in node, path
        assert not {"$ref", "anyOf", "allOf", "oneOf", "title", "additionalProperties"} & set(node) or (
            set(node) & {"$ref", "anyOf", "allOf", "oneOf", "title"} == set()
            and isinstance(node.get("additionalProperties"), dict)
        ), path
        if not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{path} has no description"


def test_crd_has_subresources_short_name_and_columns() -> None:
    crd = yaml.safe_load(CRD_PATH.read_text())
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["md"]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    assert version["subresources"]["status"] == {}
    assert [c["name"] for c in version["additionalPrinterColumns"]][:5] == [
        "Model",
        "Replicas",
        "Ready",
        "Autoscaled",  # the autoscaler's desired replicas (empty without spec.scaling)
        "GPUs",
    ]
    assert version["additionalPrinterColumns"][-1]["name"] == "Age"


def test_yaml_side_is_camel_case_and_money_is_decimal() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"source": "hf://org/m", "servedName": "m", "parameterCount": 10},
            "pricing": {"inputPer1M": "0.10", "outputPer1M": "1.5"},
            "engine": {"maxModelLen": 4096},
        }
    )
    assert spec.pricing is not None
    assert spec.pricing.input_per_1m == Decimal("0.10")
    dumped = spec.model_dump(by_alias=True, exclude_none=True)
    assert dumped["pricing"]["inputPer1M"] == "0.10"
    assert dumped["engine"]["maxModelLen"] == 4096


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"model": {"source": "ftp://x/y"}}, "must be hf://org/name"),
        ({"model": {"source": "hf://o/m"}, "scaling": {"minReplicas": 3, "maxReplicas": 2}}, "minReplicas"),
        ({"model": {"source": "hf://o/m"}, "replicas": 9, "scaling": {"maxReplicas": 2}}, "replicas must be"),
        ({"model": {"source": "hf://o/m"}, "parallelism": {"tensor": 12}}, "multiple of gpusPerNode"),
        ({"model": {"source": "hf://o/m"}, "engine": {"extraArgs": ["--port=1"]}}, "must not repeat"),
        (
            {"model": {"source": "hf://o/m"}, "engine": {"speculative": {"method": "eagle"}}},
            "model is required",
        ),
        ({"model": {"source": "hf://o/m"}, "unknown": 1}, "Extra inputs"),
    ],
)
def test_python_validation_mirrors_admission(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match="(?s)" + message.replace("[", r"\[")):
        ModelDeploymentSpec.model_validate(spec)


def test_model_deployment_reads_an_api_object() -> None:
    md = ModelDeployment.from_body(
        {
            "apiVersion": "modelplex.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "a", "namespace": "n", "uid": "u", "generation": 2, "labels": {"x": "y"}},
            "spec": {"model": {"source": "hf://o/m"}},
        }
    )
    assert md.served_name == "a"
    assert md.metadata.generation == 2
