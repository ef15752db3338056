"""Manifests of fake GPU nodes. kwok manages nodes carrying its annotation."""

from __future__ import annotations

from typing import Any

from modelplex.devcluster.config import GpuNodePool

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"


def node_names(pool: GpuNodePool) -> list[str]:
    return [f"{pool.name_prefix}-{i}" for i in range(pool.count)]


def gpu_node(name: str, pool: GpuNodePool) -> dict[str, Any]:
    """A Node whose capacity advertises the pool's GPUs, labelled like NVIDIA's feature discovery."""
    resources = {
        "cpu": pool.cpu,
        "memory": pool.memory,
        "pods": "110",
        pool.gpu_resource: str(pool.gpus_per_node),
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "nvidia.com/gpu.present": "true",
                GPU_PRODUCT_LABEL: pool.gpu_product,
                GPU_MEMORY_LABEL: str(pool.gpu_memory_mib),
                GPU_COUNT_LABEL: str(pool.gpus_per_node),
            },
        },
        "status": {"capacity": resources, "allocatable": resources},
    }


def gpu_nodes(pool: GpuNodePool) -> list[dict[str, Any]]:
    return [gpu_node(name, pool) for name in node_names(pool)]
