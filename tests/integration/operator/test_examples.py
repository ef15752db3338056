"""Each example in deploy/examples/ reaches its expected children and status on the real control plane."""

from __future__ import annotations

from typing import Any

import pytest

from mpxtest.wait import eventually

pytestmark = pytest.mark.cluster

SERVING = "modelplex.dev/deployment={name},modelplex.dev/serving=true"


def _gpus(pod: Any) -> int:
    return int(pod.spec.containers[0].resources.limits["nvidia.com/gpu"])


def test_single_gpu(kit: Any, operator: Any, namespace: str) -> None:
    kit.wait_free_gpus(1)
    kit.apply_example("single-gpu", namespace)
    ready = kit.wait_condition(namespace, "llama-8b", "True", "AllReplicasReady")
    assert "fits: needs" in ready["message"]
    deployment = kit.apps.read_namespaced_deployment("llama-8b", namespace)
    assert deployment.metadata.owner_references[0].kind == "ModelDeployment"
    (pod,) = kit.running_pods(namespace, SERVING.format(name="llama-8b"))
    assert _gpus(pod) == 1
    assert kit.core.read_node(pod.spec.node_name).metadata.labels["nvidia.com/gpu.product"]
    container = pod.spec.containers[0]
    assert container.args[:4] == [
        "--model",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--served-model-name",
        "meta-llama/Llama-3.1-8B-Instruct",
    ]
    assert container.startup_probe.http_get.path == "/health"
    assert container.env_from[0].secret_ref.name == "hf-token"
    service = kit.core.read_namespaced_service("llama-8b", namespace)
    assert service.metadata.labels["modelplex.dev/component"] == "endpoint"
    assert service.metadata.annotations["modelplex.dev/served-name"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert kit.core.read_namespaced_endpoints  # the Service selects the serving pod:
    selected = kit.core.list_namespaced_pod(
        namespace, label_selector=",".join(f"{k}={v}" for k, v in service.spec.selector.items())
    ).items
    assert [p.metadata.name for p in selected] == [pod.metadata.name]
    status = kit.md(namespace, "llama-8b")["status"]
    assert status["servedName"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert status["endpoint"] == f"http://llama-8b.{namespace}.svc.cluster.local:8000/v1"
    assert status["readyReplicas"] == status["replicas"] == status["updatedReplicas"] == 1
    assert status["selector"] == SERVING.format(name="llama-8b")
    assert status["observedGeneration"] == kit.md(namespace, "llama-8b")["metadata"]["generation"]
    assert policy_of(kit, namespace, "llama-8b")["spec"]["maxUnavailable"] == 1


def policy_of(kit: Any, namespace: str, name: str) -> dict[str, Any]:
    resource = kit.dynamic.resources.get(api_version="policy/v1", kind="PodDisruptionBudget")
    found: dict[str, Any] = resource.get(name=name, namespace=namespace).to_dict()
    return found


def test_tensor_parallel_on_one_node(kit: Any, operator: Any, namespace: str) -> None:
    kit.wait_free_gpus(8)
    kit.apply_example("tp4-one-node", namespace)
    kit.wait_condition(namespace, "llama-70b", "True", "AllReplicasReady")
    pods = kit.running_pods(namespace, SERVING.format(name="llama-70b"))
    # The example declares 2 replicas and `scaling` (1-3): the autoscaler keeps them through its
    # scale-down window, and does not take loading replicas (nothing to read) for an idle model.
    assert len(pods) == 2
    for pod in pods:
        assert _gpus(pod) == 4
        assert pod.spec.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
        args = pod.spec.containers[0].args
        assert args[args.index("--tensor-parallel-size") + 1] == "4"
        assert "--kv-cache-dtype" in args
    assert kit.lws(namespace) == []


def test_multi_node_replica_is_a_leader_worker_set(kit: Any, operator: Any, namespace: str) -> None:
    kit.wait_free_gpus(16)
    kit.apply_example("tp8-pp2-multi-node", namespace)
    kit.wait_condition(namespace, "llama-405b", "True", "AllReplicasReady", timeout=90)
    (lws,) = kit.lws(namespace)
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    pods = kit.running_pods(namespace, "modelplex.dev/deployment=llama-405b")
    assert len(pods) == 2
    assert {_gpus(p) for p in pods} == {8}
    assert len({p.spec.node_name for p in pods}) == 2
    roles = {p.metadata.labels["modelplex.dev/role"]: p for p in pods}
    leader, worker = roles["leader"].spec.containers[0], roles["worker"].spec.containers[0]
    assert "--headless" not in leader.args
    assert "--headless" in worker.args
    assert leader.args[leader.args.index("--nnodes") + 1] == "2"
    assert "$(LWS_LEADER_ADDRESS)" in worker.args
    worker_env = {e.name: e for e in worker.env}
    assert "LWS_LEADER_ADDRESS" in worker_env
    assert "NODE_RANK" in worker_env
    assert worker.ports is None
    assert leader.ports[0].container_port == 8000
    assert kit.apps.list_namespaced_deployment(namespace).items == []
    status = kit.md(namespace, "llama-405b")["status"]
    assert (status["gpusPerReplica"], status["nodesPerReplica"]) == (16, 2)


def test_model_too_big_for_its_gpus(kit: Any, operator: Any, namespace: str) -> None:
    kit.apply_example("too-big", namespace)
    ready = kit.wait_condition(namespace, "too-big", "False", "InsufficientGPUMemory")
    assert "GiB" in ready["message"]
    assert "4 GPU x 80.0 GiB x 0.9 = 288.0 GiB usable" in ready["message"]
    degraded = kit.wait_condition(namespace, "too-big", "True", "InsufficientGPUMemory", kind="Degraded")
    assert degraded["message"] == ready["message"]
    assert kit.core.read_namespaced_service("too-big", namespace)
    assert kit.apps.list_namespaced_deployment(namespace).items == []
    assert kit.core.list_namespaced_pod(namespace).items == []
    reasons = {e.reason for e in kit.events(namespace, "too-big")}
    assert "InsufficientGPUMemory" in reasons


def test_more_gpus_than_the_cluster_has(kit: Any, operator: Any, namespace: str) -> None:
    manifest = {
        "apiVersion": "modelplex.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "greedy"},
        "spec": {"model": {"source": "hf://org/model"}, "parallelism": {"tensor": 8}, "replicas": 3},
    }
    kit.create(manifest, namespace)
    ready = kit.wait_condition(namespace, "greedy", "False", "InsufficientGPU", timeout=90)
    assert "Insufficient nvidia.com/gpu" in ready["message"]
    kit.wait_condition(namespace, "greedy", "True", "InsufficientGPU", kind="Degraded")
    # The Event is posted on its own request, after the status patch: it may land a moment later.
    eventually(
        lambda: any(
            e.reason == "InsufficientGPU" and e.type == "Warning" for e in kit.events(namespace, "greedy")
        ),
        timeout=30,
        what="a Warning Event with reason InsufficientGPU",
    )
