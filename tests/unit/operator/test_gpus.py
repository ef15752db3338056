"""Per-GPU memory from the nodes when resources.gpuMemory is not declared, and the Store's node view."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import pytest

from modelplex.crds.spec import ModelDeploymentSpec
from modelplex.devcluster.config import GpuNodePool
from modelplex.devcluster.nodes import gpu_node, gpu_nodes
from modelplex.kube.credentials import KubeCredentials
from modelplex.operator.controller import Controller
from modelplex.operator.fit import check_fit
from modelplex.operator.gpus import KNOWN_PRODUCTS_GIB, NodeGpus, node_gpus
from modelplex.operator.handlers import build_registry
from modelplex.operator.settings import OperatorSettings
from modelplex.operator.store import Store

GIB = 2**30
LLAMA_405B = {"source": "hf://meta-llama/Llama-3.1-405B-Instruct", "parameterCount": 405_853_388_800}


def _spec(resources: dict[str, Any] | None = None, tensor: int = 1, **model: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {
            "model": {**LLAMA_405B, **model},
            "engine": {"dtype": "bfloat16"},
            "parallelism": {"tensor": tensor},
            "resources": resources or {},
        }
    )


def _node(name: str, labels: dict[str, str], gpus: int = 8, resource: str = "nvidia.com/gpu") -> NodeGpus:
    body = {
        "metadata": {"name": name, "labels": labels},
        "status": {"allocatable": {"cpu": "64", "memory": "512Gi", resource: str(gpus)}},
    }
    view = node_gpus(body)
    assert view is not None
    return view


def _a100(name: str, **labels: str) -> NodeGpus:
    return _node(name, {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB", **labels})


def test_the_view_of_a_node_keeps_labels_and_extended_resources_only() -> None:
    body = gpu_node("gpu-node-0", GpuNodePool())
    body["metadata"]["labels"]["feature.node.kubernetes.io/cpu-cpuid.AVX512F"] = "true"
    body["metadata"]["managedFields"] = [{"manager": "kubelet"}]
    view = node_gpus(body)
    assert view is not None
    assert view.name == "gpu-node-0"
    assert view.allocatable == (("nvidia.com/gpu", 8),)
    assert view.labels["nvidia.com/gpu.memory"] == "81559"
    assert not any(key.startswith("feature.node.kubernetes.io/") for key in view.labels)
    cpu_only = {"metadata": {"name": "cpu-0"}, "status": {"allocatable": {"cpu": "8", "pods": "110"}}}
    assert node_gpus(cpu_only) is None


def test_a_405b_model_on_one_gpu_does_not_fit_by_the_node_label() -> None:
    nodes = [v for body in gpu_nodes(GpuNodePool()) if (v := node_gpus(body)) is not None]
    verdict = check_fit(_spec(), nodes)
    assert verdict.fits is False
    assert verdict.usable_bytes == int(81559 * 2**20 * 0.9)
    assert verdict.message.startswith("needs 756.0 GiB")
    assert verdict.message.endswith(
        "but has 1 GPU x 79.6 GiB x 0.9 = 71.7 GiB usable"
        " (GPU memory from node label nvidia.com/gpu.memory on gpu-node-0)"
    )


def test_without_the_memory_label_the_product_is_looked_up() -> None:
    verdict = check_fit(_spec(tensor=8, parameterCount=8_000_000_000), [_a100("a-1")])
    assert verdict.fits is True
    assert "8 GPU x 40.0 GiB x 0.9 = 288.0 GiB usable" in verdict.message
    assert verdict.message.endswith("(from nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB on a-1, 40 GiB)")
    shared = _node("t-1", {"nvidia.com/gpu.product": "Tesla-T4-SHARED"})  # time-sliced
    assert check_fit(_spec(parameterCount=8_000_000_000), [shared]).usable_bytes == int(16 * GIB * 0.9)
    label_wins = _node(
        "h-1", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", "nvidia.com/gpu.memory": "81559"}
    )
    assert "node label nvidia.com/gpu.memory on h-1" in check_fit(_spec(), [label_wins]).message


def test_the_table_knows_the_common_products() -> None:
    for product in ("NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB", "NVIDIA-L40S", "NVIDIA-L4", "Tesla-T4"):
        assert product in KNOWN_PRODUCTS_GIB
    assert KNOWN_PRODUCTS_GIB["NVIDIA-H200"] == 141


@pytest.mark.parametrize(
    ("nodes", "why"),
    [
        ([], "no node has 1 allocatable nvidia.com/gpu"),
        ([_node("amd-1", {}, resource="amd.com/gpu")], "no node has 1 allocatable nvidia.com/gpu"),
        (
            [_node("x-1", {"nvidia.com/gpu.product": "NVIDIA-Future-GPU"}), _node("x-2", {})],
            "no eligible node (x-1, x-2) has a nvidia.com/gpu.memory label or a known nvidia.com/gpu.product",
        ),
        (
            [_node("m-1", {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"})],
            "no eligible node (m-1) has a nvidia.com/gpu.memory label or a known nvidia.com/gpu.product",
        ),
    ],
)
def test_no_figure_skips_the_check_and_says_what_is_missing(nodes: list[NodeGpus], why: str) -> None:
    verdict = check_fit(_spec(), nodes)
    assert verdict.fits is None
    assert verdict.message == f"GPU memory check skipped: resources.gpuMemory is not declared and {why}"


def test_only_nodes_a_replica_could_be_scheduled_on_count() -> None:
    small, big = _a100("a-1", pool="x"), _node("b-1", {"pool": "y", "nvidia.com/gpu.memory": "143771"})
    nodes = [small, big]
    assert "on a-1" in check_fit(_spec({"nodeSelector": {"pool": "x"}}), nodes).message
    assert "on b-1" in check_fit(_spec({"nodeSelector": {"pool": "y"}}), nodes).message
    by_product = check_fit(_spec({"gpuProduct": "NVIDIA-A100-SXM4-40GB"}), nodes)
    assert "on a-1" in by_product.message
    none = check_fit(_spec({"nodeSelector": {"pool": "z"}}), nodes)
    assert none.message.endswith("no node has 1 allocatable nvidia.com/gpu matching nodeSelector pool=z")
    # A pod of 8 GPUs cannot go to a node with 4; a pod on another GPU resource not to either.
    four = _node("c-1", {"nvidia.com/gpu.memory": "200000"}, gpus=4)
    assert "on a-1" in check_fit(_spec(tensor=8), [small, four]).message
    mig = _node("m-1", {"nvidia.com/gpu.memory": "4864"}, resource="nvidia.com/mig-1g.5gb")
    assert "on m-1" in check_fit(_spec({"gpuResourceName": "nvidia.com/mig-1g.5gb"}), [small, mig]).message


def test_disagreeing_nodes_use_the_largest_and_name_the_smallest() -> None:
    nodes = [_a100("a-1"), _node("h-2", {"nvidia.com/gpu.memory": "81559"}), _a100("a-3")]
    seventy = _spec(parameterCount=30_000_000_000)  # 55.9 GiB: fits an 80 GiB GPU, not a 40 GiB one
    verdict = check_fit(seventy, nodes)
    assert verdict.fits is True
    assert verdict.message.endswith(
        "(GPU memory from node label nvidia.com/gpu.memory on h-2;"
        " the largest of 3 eligible nodes, the smallest has 40.0 GiB)"
    )
    assert check_fit(_spec(), nodes).fits is False  # too big for the largest: certain
    same = check_fit(seventy, [_a100("a-2"), _a100("a-1")])
    assert same.message.endswith("(from nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB on a-1, 40 GiB)")


def test_declared_memory_needs_no_node() -> None:
    verdict = check_fit(_spec({"gpuMemory": "141Gi"}, tensor=8), [])
    assert verdict.fits is True
    assert verdict.message.endswith("(GPU memory declared in resources.gpuMemory)")


def _md(name: str, resources: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "generation": 1}, "spec": {"resources": resources}}


def test_a_node_change_returns_the_model_deployments_whose_figure_it_may_change() -> None:
    store = Store()
    store.put_deployment(_md("reads", {}))
    store.put_deployment(_md("declared", {"gpuMemory": "80Gi"}))
    store.put_deployment(_md("elsewhere", {"nodeSelector": {"pool": "y"}}))
    store.put_deployment(_md("other-resource", {"gpuResourceName": "amd.com/gpu"}))
    body = gpu_node("gpu-node-0", GpuNodePool())
    assert store.put_node("gpu-node-0", node_gpus(body)) == [("ns", "reads")]
    assert [n.name for n in store.gpu_nodes()] == ["gpu-node-0"]
    body["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastHeartbeatTime": "T2"}]
    assert store.put_node("gpu-node-0", node_gpus(body)) == []  # a heartbeat changes nothing read
    body["metadata"]["labels"]["pool"] = "y"
    assert store.put_node("gpu-node-0", node_gpus(body)) == [("ns", "reads"), ("ns", "elsewhere")]
    store.drop_deployment(("ns", "reads"))
    assert store.put_node("gpu-node-0", None) == [("ns", "elsewhere")]
    assert store.gpu_nodes() == ()
    assert store.put_node("gpu-node-0", None) == []


def _handlers(registry: Any, kind: str, plural: str) -> Any:
    (handler,) = [h for h in getattr(registry, kind).get_all_handlers() if h.selector.any_name == plural]
    return handler.fn


def test_node_handlers_feed_the_store_and_queue_the_readers() -> None:
    controller = Controller(OperatorSettings(kubeconfig=None), Store(), applier=None)  # type: ignore[arg-type]
    registry = build_registry(controller, KubeCredentials("https://127.0.0.1:6443"))
    index = _handlers(registry, "_indexing", "nodes")
    on_node, on_model = (
        _handlers(registry, "_watching", "nodes"),
        _handlers(registry, "_watching", "modeldeployments"),
    )
    body = gpu_node("gpu-node-0", GpuNodePool())

    async def scenario() -> list[tuple[str, str]]:
        await on_model(event={"type": "ADDED", "object": _md("m", {})})
        queued = [await asyncio.wait_for(controller.queue.get(), 1)]
        controller.queue.done(queued[0])
        await index(body=body)
        queued.append(await asyncio.wait_for(controller.queue.get(), 1))
        controller.queue.done(queued[-1])
        await on_node(event={"type": "MODIFIED", "object": body})  # index did it
        assert len(controller.queue) == 0
        await on_node(event={"type": "DELETED", "object": body})
        queued.append(await asyncio.wait_for(controller.queue.get(), 1))
        return queued

    assert asyncio.run(scenario()) == [("ns", "m")] * 3
    assert controller.store.gpu_nodes() == ()


def test_the_node_view_is_small() -> None:
    pool = GpuNodePool(count=1000)
    bodies = gpu_nodes(pool)
    for body in bodies:  # a real node carries more labels than kwok's
        body["metadata"]["labels"].update(
            {f"nvidia.com/gpu.{k}": v for k, v in (("family", "hopper"), ("compute.major", "9"))}
            | {"topology.kubernetes.io/zone": "zone-a", "node.kubernetes.io/instance-type": "p5.48xlarge"}
        )
    store = Store()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for body in bodies:
        store.put_node(body["metadata"]["name"], node_gpus(body))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per_node = sum(stat.size_diff for stat in after.compare_to(before, "filename")) / len(bodies)
    assert per_node < 1500, per_node
