"""The API server refuses what can never work, naming the field (OpenAPI schema + CEL rules)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.cluster

VALID: dict[str, Any] = {
    "apiVersion": "modelplex.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "checked"},
    "spec": {"model": {"source": "hf://org/model"}},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(VALID)
    node = manifest
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return manifest


INVALID = [
    (
        "tensor below 1",
        _with("spec.parallelism.tensor", 0),
        ["spec.parallelism.tensor", "greater than or equal to 1"],
    ),
    ("pipeline below 1", _with("spec.parallelism.pipeline", 0), ["spec.parallelism.pipeline"]),
    (
        "minReplicas above maxReplicas",
        _with("spec.scaling", {"minReplicas": 3, "maxReplicas": 2}),
        ["spec.scaling.minReplicas", "minReplicas must not exceed maxReplicas"],
    ),
    (
        "replicas above maxReplicas",
        {
            **VALID,
            "spec": {
                "model": {"source": "hf://org/model"},
                "replicas": 5,
                "scaling": {"minReplicas": 1, "maxReplicas": 2},
            },
        },
        ["spec.replicas", "replicas must be within [scaling.minReplicas, scaling.maxReplicas]"],
    ),
    (
        "unknown quantization",
        _with("spec.engine.quantization", "int3"),
        ["spec.engine.quantization", "Unsupported value"],
    ),
    (
        "malformed source",
        _with("spec.model.source", "ftp://host/model"),
        ["spec.model.source", "hf://org/name"],
    ),
    ("source without org", _with("spec.model.source", "hf://model"), ["spec.model.source"]),
    (
        "gpuMemoryUtilization 0",
        _with("spec.engine.gpuMemoryUtilization", 0),
        ["spec.engine.gpuMemoryUtilization"],
    ),
    (
        "gpuMemoryUtilization > 1",
        _with("spec.engine.gpuMemoryUtilization", 1.5),
        ["spec.engine.gpuMemoryUtilization"],
    ),
    (
        "parallelism not a multiple of gpusPerNode",
        _with("spec.parallelism", {"tensor": 12}),
        ["spec.parallelism", "multiple of gpusPerNode"],
    ),
    (
        "speculative model missing",
        _with("spec.engine.speculative", {"method": "eagle"}),
        ["spec.engine.speculative.model", "model is required unless method is ngram"],
    ),
    (
        "extraArgs repeating a managed flag",
        _with("spec.engine.extraArgs", ["--tensor-parallel-size=2"]),
        ["spec.engine.extraArgs", "must not repeat flags"],
    ),
    (
        "scale to zero without minReplicas 0",
        _with("spec.scaling", {"minReplicas": 1, "maxReplicas": 2, "scaleToZeroIdleSeconds": 60}),
        ["spec.scaling.scaleToZeroIdleSeconds", "needs minReplicas: 0"],
    ),
    (
        "money as a float",
        _with("spec.pricing", {"inputPer1M": 0.5, "outputPer1M": "1"}),
        ["spec.pricing.inputPer1M"],
    ),
    ("unknown field", _with("spec.engine.tensorParallel", 2), ["tensorParallel"]),
    ("bad gpuMemory", _with("spec.resources.gpuMemory", "eighty"), ["spec.resources.gpuMemory"]),
    ("name too long for a Service", _with("metadata.name", "m" * 60), ["metadata.name", "DNS-1035"]),
    ("missing model", {**VALID, "spec": {"replicas": 1}}, ["spec.model", "Required value"]),
]


@pytest.mark.parametrize(("manifest", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_spec_is_refused_naming_the_field(
    kit: Any, namespace: str, manifest: dict[str, Any], expected: list[str]
) -> None:
    result = kit.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest)
    )
    assert result.returncode != 0, result.stdout
    for fragment in expected:
        assert fragment in result.stderr, result.stderr


def test_valid_spec_is_accepted_with_defaults(kit: Any, namespace: str) -> None:
    kit.create(VALID, namespace)
    spec = kit.md(namespace, "checked")["spec"]
    assert spec["replicas"] == 1
    assert spec["parallelism"] == {"tensor": 1, "pipeline": 1}
    assert spec["engine"]["gpuMemoryUtilization"] == 0.9
    assert spec["resources"]["gpuResourceName"] == "nvidia.com/gpu"
    assert spec["access"] == {}


def test_short_name_and_printer_columns(kit: Any, namespace: str) -> None:
    kit.create(VALID, namespace)
    result = kit.kubectl("get", "md", "-n", namespace)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header[:7] == ["NAME", "MODEL", "REPLICAS", "READY", "AUTOSCALED", "GPUS", "STATUS"]
    assert header[-1] == "AGE"
