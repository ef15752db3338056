"""The operator's capacity report, pure: Ready engine pods as the ledger's observation body."""

from __future__ import annotations

from typing import Any

import pytest

from modelplex.crds import labels
from modelplex.operator.capacity import UnknownDeployment, observation
from modelplex.operator.gpus import NodeGpus
from modelplex.operator.podspec import GPU_PRODUCT_LABEL

MD = {"spec": {"model": {"servedName": "llama-8b"}, "resources": {"gpuResourceName": "nvidia.com/gpu"}}}
SINCE = "2026-05-04T08:00:00Z"


def pod(name: str, ready: str = "True", product: str | None = None, node: str = "n1") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeName": node,
        "containers": [{"resources": {"limits": {"nvidia.com/gpu": "2", "cpu": "4"}}}],
    }
    if product:
        spec["nodeSelector"] = {GPU_PRODUCT_LABEL: product}
    return {
        "metadata": {"name": name, "namespace": "prod", "labels": {labels.DEPLOYMENT: "llama"}},
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": SINCE}]},
    }


def test_only_ready_pods_are_reported_with_gpus_and_product() -> None:
    nodes = [NodeGpus(name="n1", labels={GPU_PRODUCT_LABEL: "NVIDIA-L4"}, allocatable=())]
    pods = [
        pod("b", product="NVIDIA-H100-80GB-HBM3"),
        pod("a"),
        pod("c", ready="False"),
        pod("d", node="gone"),
    ]
    body = observation(pods, lambda key: MD if key == ("prod", "llama") else None, nodes)
    assert body["source"] == "kubernetes"
    assert [(r["replica"], r["gpus"], r["gpuProduct"]) for r in body["ready"]] == [
        ("a", 2, "NVIDIA-L4"),
        ("b", 2, "NVIDIA-H100-80GB-HBM3"),
        ("d", 2, "unknown"),
    ]
    assert {(r["model"], r["deployment"], r["readySince"]) for r in body["ready"]} == {
        ("llama-8b", "llama", SINCE)
    }


def test_a_ready_pod_of_an_unseen_deployment_holds_the_report_back() -> None:
    with pytest.raises(UnknownDeployment, match="prod/llama"):
        observation([pod("a")], lambda key: None, [])
    assert observation([pod("a", ready="False")], lambda key: None, []) == {
        "source": "kubernetes",
        "ready": [],
    }
