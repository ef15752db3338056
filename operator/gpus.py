"""Per-GPU memory from the nodes (pure): what the will-it-fit check uses when resources.gpuMemory is absent.

The operator keeps a tiny view of each node that offers an extended resource (NodeGpus: name, labels,
allocatable extended resources; not the body). A replica could run on a node when the node has its
GPU resource allocatable (at least the GPUs of one pod) and matches its nodeSelector (with
resources.gpuProduct as nvidia.com/gpu.product). The per-GPU memory of such a node is GPU Feature
Discovery's `nvidia.com/gpu.memory` label (MiB, what NVML reports), else its `nvidia.com/gpu.product`
label in a table of known products.

Eligible nodes that disagree: the LARGEST figure is used. "Does not fit" withholds the workload and
must be certain (fit.py's rule), so it may only be said when no node the replica could be scheduled
on could hold it; with the smallest, one node of small GPUs in a pool of large ones would stop a
model that fits the rest. The verdict then names the smallest figure too, since a replica landing
there would not load.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modelplex.crds.spec import ModelDeploymentSpec, Resources

GIB = 1024**3
MIB = 1024**2
MEMORY_LABEL = "nvidia.com/gpu.memory"
PRODUCT_LABEL = "nvidia.com/gpu.product"
DEFAULT_GPU_RESOURCE: str = Resources.model_fields["gpu_resource_name"].default
# Node Feature Discovery publishes a hundred or more of these per node (CPU flags, kernel, PCI);
# they are not kept. A nodeSelector on one then matches no node and the check is skipped, never wrong.
_UNKEPT_LABEL_PREFIXES = ("feature.node.kubernetes.io/",)
_SHARED_SUFFIX = "-SHARED"  # GFD's product suffix for time-sliced GPUs; the memory is the GPU's

# GiB per GPU by GFD's nvidia.com/gpu.product. The product label is NVML's device name with spaces
# replaced by "-" (plus "-SHARED" when time-sliced, "-MIG-<profile>" for MIG, which are not listed):
# NVIDIA/k8s-device-plugin internal/lm/resource.go, productLabel(). Strings seen as label values in
# public configs: NVIDIA-H100-80GB-HBM3, NVIDIA-H100-PCIe, NVIDIA-A100-SXM4-80GB, NVIDIA-A100-80GB-PCIe,
# NVIDIA-A100-SXM4-40GB, NVIDIA-A100-PCIE-40GB, NVIDIA-L40S, NVIDIA-L40, NVIDIA-A40, NVIDIA-A10,
# NVIDIA-RTX-A6000, Tesla-T4; the others are NVML names as nvidia-smi prints them. Figures are the
# nominal capacity in GiB from NVIDIA's datasheets, never below what NVML reports (e.g. H100 80 GiB vs
# 81559 MiB reported, B200 180 GiB vs ~179 GiB), so a figure from this table can make "does not fit"
# rarer, never wrong.
KNOWN_PRODUCTS_GIB: dict[str, int] = {
    "NVIDIA-B200": 180,
    "NVIDIA-H200": 141,
    "NVIDIA-H200-NVL": 141,
    "NVIDIA-GH200-480GB": 96,
    "NVIDIA-GH200-144G-HBM3e": 144,
    "NVIDIA-H100-80GB-HBM3": 80,
    "NVIDIA-H100-PCIe": 80,
    "NVIDIA-H100-NVL": 94,
    "NVIDIA-H800": 80,
    "NVIDIA-H20": 96,
    "NVIDIA-A100-SXM4-80GB": 80,
    "NVIDIA-A100-80GB-PCIe": 80,
    "NVIDIA-A100-SXM4-40GB": 40,
    "NVIDIA-A100-PCIE-40GB": 40,
    "NVIDIA-A800-SXM4-80GB": 80,
    "NVIDIA-A40": 48,
    "NVIDIA-A30": 24,
    "NVIDIA-A10": 24,
    "NVIDIA-A10G": 24,
    "NVIDIA-L40S": 48,
    "NVIDIA-L40": 48,
    "NVIDIA-L4": 24,
    "NVIDIA-RTX-A6000": 48,
    "NVIDIA-RTX-6000-Ada-Generation": 48,
    "Tesla-T4": 16,
    "Tesla-V100-SXM2-16GB": 16,
    "Tesla-V100-SXM2-32GB": 32,
    "Tesla-V100-PCIE-16GB": 16,
    "Tesla-V100-PCIE-32GB": 32,
}


@dataclass(frozen=True, slots=True)
class NodeGpus:
    """What the fit check reads of one node: its labels and allocatable extended resources (> 0)."""

    name: str
    labels: dict[str, str]
    allocatable: tuple[tuple[str, int], ...]

    def count(self, resource: str) -> int:
        return next((n for name, n in self.allocatable if name == resource), 0)


@dataclass(frozen=True, slots=True)
class Placement:
    """Which nodes one engine pod of a replica can use."""

    selector: tuple[tuple[str, str], ...]
    resource: str
    gpus_per_pod: int = 1

    def admits(self, node: NodeGpus) -> bool:
        if node.count(self.resource) < self.gpus_per_pod:
            return False
        return all(node.labels.get(key) == value for key, value in self.selector)

    def describe(self) -> str:
        where = f"{self.gpus_per_pod} allocatable {self.resource}"
        if self.selector:
            where += " matching nodeSelector " + ",".join(f"{k}={v}" for k, v in self.selector)
        return where


@dataclass(frozen=True, slots=True)
class GpuMemory:
    """Bytes of one GPU and where the figure came from, for the verdict."""

    bytes: int
    source: str


def _extended(allocatable: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    found = []
    for name, value in allocatable.items():
        if "/" not in name:
            continue  # cpu, memory, pods, ephemeral-storage, hugepages-*
        try:
            count = int(str(value))
        except ValueError:
            continue  # extended resources are whole numbers
        if count > 0:
            found.append((sys.intern(name), count))
    return tuple(sorted(found))


def node_gpus(body: Mapping[str, Any]) -> NodeGpus | None:
    """The view of a Node body; None when it offers no extended resource (no GPUs of any kind)."""
    metadata = body.get("metadata") or {}
    allocatable = _extended((body.get("status") or {}).get("allocatable") or {})
    if not allocatable:
        return None
    # Keys and most values repeat on every node: interned, each node holds only references.
    labels = {
        sys.intern(str(key)): sys.intern(str(value))
        for key, value in (metadata.get("labels") or {}).items()
        if not str(key).startswith(_UNKEPT_LABEL_PREFIXES)
    }
    return NodeGpus(sys.intern(str(metadata.get("name", ""))), labels, allocatable)


def placement(spec: ModelDeploymentSpec) -> Placement:
    wanted = spec.resources
    selector = dict(wanted.node_selector)
    if wanted.gpu_product:
        selector[PRODUCT_LABEL] = wanted.gpu_product  # as podspec.pod_template does
    gpus = spec.parallelism.gpus
    pods = math.ceil(gpus / wanted.gpus_per_node)
    return Placement(tuple(sorted(selector.items())), wanted.gpu_resource_name, gpus // pods)


def body_placement(body: Mapping[str, Any]) -> Placement | None:
    """From a raw ModelDeployment body, for queueing only: the nodes its verdict may read, or None
    when it declares resources.gpuMemory. Looser than placement() (any GPU count), so a node change
    queues every ModelDeployment it could matter to, and perhaps a few more."""
    resources = (body.get("spec") or {}).get("resources") or {}
    if resources.get("gpuMemory") is not None:
        return None
    selector = {str(k): str(v) for k, v in (resources.get("nodeSelector") or {}).items()}
    if resources.get("gpuProduct"):
        selector[PRODUCT_LABEL] = str(resources["gpuProduct"])
    resource = str(resources.get("gpuResourceName") or DEFAULT_GPU_RESOURCE)
    return Placement(tuple(sorted(selector.items())), resource)


def node_memory(node: NodeGpus) -> GpuMemory | None:
    label = node.labels.get(MEMORY_LABEL)
    if label is not None and label.isdigit() and int(label) > 0:
        return GpuMemory(int(label) * MIB, f"GPU memory from node label {MEMORY_LABEL} on {node.name}")
    product = node.labels.get(PRODUCT_LABEL)
    if product is None:
        return None
    known = KNOWN_PRODUCTS_GIB.get(product.removesuffix(_SHARED_SUFFIX))
    if known is None:
        return None
    return GpuMemory(known * GIB, f"from {PRODUCT_LABEL}={product} on {node.name}, {known} GiB")


def gpu_memory(spec: ModelDeploymentSpec, nodes: Iterable[NodeGpus]) -> GpuMemory | str:
    """The per-GPU memory one replica of `spec` can count on from the nodes, or why it is unknown."""
    where = placement(spec)
    eligible = sorted((node for node in nodes if where.admits(node)), key=lambda node: node.name)
    missing = "resources.gpuMemory is not declared and"
    if not eligible:
        return f"{missing} no node has {where.describe()}"
    figures = [figure for node in eligible if (figure := node_memory(node)) is not None]
    if not figures:
        names = ", ".join(node.name for node in eligible[:3]) + (", ..." if len(eligible) > 3 else "")
        return f"{missing} no eligible node ({names}) has a {MEMORY_LABEL} label or a known {PRODUCT_LABEL}"
    largest = max(figures, key=lambda figure: figure.bytes)  # the first of the largest, by node name
    smallest = min(figure.bytes for figure in figures)
    if smallest == largest.bytes:
        return largest
    note = f"; the largest of {len(figures)} eligible nodes, the smallest has {smallest / GIB:.1f} GiB"
    return GpuMemory(largest.bytes, largest.source + note)
