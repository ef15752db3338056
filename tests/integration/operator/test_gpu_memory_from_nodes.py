"""Will it fit, without resources.gpuMemory: the operator reads the GPU memory from the nodes' labels."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from modelplex.devcluster.config import GpuNodePool
from modelplex.devcluster.nodes import GPU_MEMORY_LABEL, gpu_node
from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster

LLAMA_405B = {"source": "hf://meta-llama/Llama-3.1-405B-Instruct", "parameterCount": 405853388800}


def _md(name: str, model: dict[str, Any], resources: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"model": model, "engine": {"dtype": "bfloat16"}}
    if resources:
        spec["resources"] = resources
    return {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_a_405b_model_on_one_gpu_without_gpu_memory_gets_no_workload(
    kit: Any, operator: Any, namespace: str
) -> None:
    kit.create(_md("big-on-one", LLAMA_405B), namespace)  # as a new user would: no resources at all
    ready = kit.wait_condition(namespace, "big-on-one", "False", "InsufficientGPUMemory")
    assert ready["message"].startswith("needs 756.0 GiB")
    assert "1 GPU x 79.6 GiB x 0.9 = 71.7 GiB usable" in ready["message"]
    assert "(GPU memory from node label nvidia.com/gpu.memory on gpu-node-" in ready["message"]
    assert kit.apps.list_namespaced_deployment(namespace).items == []
    assert kit.core.list_namespaced_pod(namespace).items == []
    assert "InsufficientGPUMemory" in {e.reason for e in kit.events(namespace, "big-on-one")}


def test_a_node_that_appears_changes_the_verdict(kit: Any, operator: Any, namespace: str) -> None:
    """A GPU kind no node offers yet: the check is skipped; a node of 40 GiB GPUs (GFD product label
    only) joins: the ModelDeployment is reconciled again, does not fit, and its workload goes."""
    resource, taint = "example.com/fit-test-gpu", "modelplex.dev/fit-test"
    name = f"fit-test-{namespace}"[:63].rstrip("-")
    md = _md(
        "waits-for-a-node",
        {"source": "hf://org/seventy", "parameterCount": 70_000_000_000},
        {
            "gpuResourceName": resource,
            "nodeSelector": {"modelplex.dev/fit-test": name},
            "tolerations": [{"key": taint, "operator": "Exists"}],
        },
    )
    kit.create(md, namespace)

    # No node to read: the check is skipped (Ready then reports the unschedulable pod), not refused.
    def deployments() -> list[Any]:
        return list(kit.apps.list_namespaced_deployment(namespace).items)

    def refused() -> bool:
        ready = kit.condition(namespace, "waits-for-a-node")
        return bool(ready and ready["reason"] == "InsufficientGPUMemory")

    eventually(deployments, what="the Deployment")
    kit.wait_condition(namespace, "waits-for-a-node", "False")
    assert not refused()

    pool = GpuNodePool(count=1, gpus_per_node=1, gpu_resource=resource, gpu_product="NVIDIA-A100-SXM4-40GB")
    node = gpu_node(name, pool)
    del node["metadata"]["labels"][GPU_MEMORY_LABEL]
    node["metadata"]["labels"]["modelplex.dev/fit-test"] = name
    node["spec"] = {"taints": [{"key": taint, "effect": "NoSchedule"}]}
    kit.core.create_node(node)
    try:
        ready = kit.wait_condition(namespace, "waits-for-a-node", "False", "InsufficientGPUMemory")
        assert ready["message"].endswith(
            f"(from nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB on {name}, 40 GiB)"
        )
        assert "1 GPU x 40.0 GiB x 0.9 = 36.0 GiB usable" in ready["message"]
        eventually(lambda: not deployments(), what="the Deployment removed")
    finally:
        try:
            kit.core.delete_node(name)
        except ApiException as error:
            if error.status != 404:
                raise
    eventually(deployments, timeout=60, what="the Deployment again once the node is gone")
    eventually(lambda: not refused(), what="the refusal lifted")
